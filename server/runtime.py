"""What the app and the CLI share at run time: config, database, personal-data sealing, WeChat.

Built once by `create_app` (or a CLI command); nothing here runs at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.config import Config
from server.db import make_engine, make_read_session_factory, make_session_factory
from server.services.kernel.audit import CHAIN_KEY
from server.services.kernel.pii import PersonalData
from server.storage import Storage, build_storage
from server.wechat.interface import WeChatGateway


@dataclass
class Runtime:
    config: Config
    engine: Engine
    session_factory: sessionmaker[Session]
    pii: PersonalData
    #: Sessions without a transaction, for views marked `read_only` (api/deps.py).
    read_session_factory: sessionmaker[Session]
    read_engine: Engine
    #: Photos and department files (local disk or S3-compatible object storage).
    storage: Storage
    _gateway: WeChatGateway | None = field(default=None, repr=False)

    @classmethod
    def build(cls, config: Config) -> Runtime:
        engine = make_engine(config.database_url)
        read_engine = make_engine(config.database_url, isolation_level="AUTOCOMMIT")
        return cls(
            config=config,
            engine=engine,
            session_factory=make_session_factory(
                engine, info={CHAIN_KEY: config.audit_chain_key_bytes}
            ),
            pii=PersonalData.from_spec(config.field_encryption_key),
            read_session_factory=make_read_session_factory(read_engine),
            read_engine=read_engine,
            storage=build_storage(config),
        )

    def dispose(self) -> None:
        """Close every pooled connection (tests, forked workers)."""
        self.engine.dispose()
        self.read_engine.dispose()

    @property
    def gateway(self) -> WeChatGateway:
        """The WeChat gateway, built on first use (only `server.wechat` imports wechatpy)."""
        if self._gateway is None:
            from server.wechat import build_gateway

            self._gateway = build_gateway(self.config, self.session_factory)
        return self._gateway

    def job_deps(self) -> dict[str, Any]:
        return {"config": self.config, "pii": self.pii, "storage": self.storage, "runtime": self}


def settle_heap() -> None:
    """Move everything a process holds once it has started (modules, the ORM's mappers, the
    pinyin dictionaries: about 400,000 objects) out of the garbage collector's reach.

    Call it once a long-lived process is ready to serve (gunicorn's `post_worker_init`, the
    worker's start), never in tests. Without it each full collection walked that whole heap:
    137 ms, about once in 3,000 console pages, which set the page's p99 (bench/console.py).
    Objects created later are collected as before; frozen ones are still freed when no longer
    referenced, only cycles among them would stay.
    """
    import gc

    gc.collect()
    gc.freeze()
