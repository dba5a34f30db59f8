"""The access-token cache shared by all processes, refreshed by one process at a time.

wechatpy's own cache is per process and unlocked, so several workers finding it empty would all
fetch at once (and a `force_refresh` is rationed by WeChat). Both stores here follow the same
pattern: read without a lock; when the token is missing or stale, take a lock, read again (another
process may have refreshed while we waited) and only then fetch.

A token counts as expired `EXPIRY_MARGIN` before WeChat's expiry, so a request never leaves with
a token that dies in flight.

On SQLite the refresh takes the database write lock: call the gateway outside an open write
transaction of your own, or the refresh waits for the busy timeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from server import clock
from server.models.wechat import WeChatAccessToken

EXPIRY_MARGIN = timedelta(minutes=5)
#: How long a process reuses a token it read from the shared store before reading it again.
#: A token another process replaced meanwhile fails with 40001, and the gateway's one retry
#: then reads the new one; in exchange, a send does not pay a database round trip.
MEMO_SECONDS = 30.0


@dataclass(frozen=True)
class FetchedToken:
    token: str
    #: Seconds until WeChat expires it, as WeChat reported.
    expires_in: int


#: Fetches a token from WeChat; called with the store's lock held.
Fetcher = Callable[[], FetchedToken]


class TokenStore(Protocol):
    def get_token(self, appid: str, fetch: Fetcher) -> str:
        """A fresh token, fetching it (once across all processes) when missing or stale."""
        ...

    def invalidate(self, appid: str, token: str) -> None:
        """Forget `token` after WeChat rejected it, unless a newer one replaced it already."""
        ...


class DatabaseTokenStore:
    """Rows in `wechat_access_tokens`; PostgreSQL `SELECT ... FOR UPDATE`, SQLite write lock."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = clock.now,
        lock_timeout_seconds: int = 30,
    ) -> None:
        self._factory = session_factory
        self._clock = clock
        self._lock_timeout_seconds = lock_timeout_seconds
        #: appid → (token, its expiry, monotonic time it was read): this process's short memo.
        self._memo: dict[str, tuple[str, datetime, float]] = {}

    def get_token(self, appid: str, fetch: Fetcher) -> str:
        memo = self._memo.get(appid)
        if (
            memo is not None
            and time.monotonic() - memo[2] < MEMO_SECONDS
            and self._clock() < memo[1] - EXPIRY_MARGIN
        ):
            return memo[0]
        with self._factory() as session:
            row = session.get(WeChatAccessToken, appid)
            if row is not None and self._is_fresh(row):
                assert row.token is not None and row.expires_at is not None
                self._remember(appid, row.token, row.expires_at)
                return row.token
        return self._refresh(appid, fetch)

    def _remember(self, appid: str, token: str, expires_at: datetime) -> None:
        self._memo[appid] = (token, expires_at, time.monotonic())

    def invalidate(self, appid: str, token: str) -> None:
        memo = self._memo.get(appid)
        if memo is not None and memo[0] == token:
            self._memo.pop(appid, None)
        with self._factory() as session, session.begin():
            session.execute(
                update(WeChatAccessToken)
                .where(WeChatAccessToken.appid == appid, WeChatAccessToken.token == token)
                .values(token=None, expires_at=None, updated_at=self._clock())
            )

    def _refresh(self, appid: str, fetch: Fetcher) -> str:
        with self._factory() as session, session.begin():
            postgres = session.get_bind().dialect.name == "postgresql"
            if postgres:
                # Waiters queue on the insert or the row lock; give up if a fetcher is stuck.
                limit = f"SET LOCAL lock_timeout = '{self._lock_timeout_seconds}s'"
                session.connection().exec_driver_sql(limit)
            self._insert_placeholder(session, appid)
            row = self._lock_row(session, appid, for_update=postgres)
            if self._is_fresh(row):  # the process we waited for already refreshed
                assert row.token is not None and row.expires_at is not None
                self._remember(appid, row.token, row.expires_at)
                return row.token
            fetched = fetch()
            now = self._clock()
            row.token = fetched.token
            row.expires_at = now + timedelta(seconds=fetched.expires_in)
            row.updated_at = now
            self._remember(appid, fetched.token, row.expires_at)
            return fetched.token

    def _insert_placeholder(self, session: Session, appid: str) -> None:
        """Make sure the row exists so there is something to lock (races are harmless)."""
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = {"appid": appid, "token": None, "expires_at": None, "updated_at": self._clock()}
        session.execute(
            insert(WeChatAccessToken)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["appid"])
        )

    def _lock_row(self, session: Session, appid: str, *, for_update: bool) -> WeChatAccessToken:
        # SQLite has no row locks; there the INSERT above already took the database write lock.
        stmt = select(WeChatAccessToken).where(WeChatAccessToken.appid == appid)
        if for_update:
            stmt = stmt.with_for_update()
        return session.execute(stmt.execution_options(populate_existing=True)).scalar_one()

    def _is_fresh(self, row: WeChatAccessToken) -> bool:
        return (
            row.token is not None
            and row.expires_at is not None
            and row.expires_at - EXPIRY_MARGIN > self._clock()
        )


# Delete the key only if it still holds our value (a lock we own / the token that was rejected).
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """Redis keys `<prefix><appid>` (token, TTL = expiry - margin) and `<prefix><appid>:lock`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "e-rescue:wechat:access-token:",
        lock_ttl_seconds: float = 30.0,
        poll_seconds: float = 0.05,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=3, socket_timeout=5
        )
        self._prefix = prefix
        self._lock_ttl_ms = int(lock_ttl_seconds * 1000)
        self._poll_seconds = poll_seconds

    def get_token(self, appid: str, fetch: Fetcher) -> str:
        key = self._prefix + appid
        # Bounded: a stuck lock expires after its TTL, so two rounds always suffice.
        deadline = time.monotonic() + 2 * self._lock_ttl_ms / 1000
        while True:
            token = self._read(key)
            if token:
                return token
            lock_value = uuid.uuid4().hex
            if self._redis.set(key + ":lock", lock_value, nx=True, px=self._lock_ttl_ms):
                try:
                    return self._read(key) or self._fetch_and_store(key, fetch)
                finally:
                    self._redis.eval(_DELETE_IF_EQUAL, 1, key + ":lock", lock_value)
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited too long for the WeChat token lock of {appid}")
            time.sleep(self._poll_seconds)

    def invalidate(self, appid: str, token: str) -> None:
        self._redis.eval(_DELETE_IF_EQUAL, 1, self._prefix + appid, token)

    def _read(self, key: str) -> str | None:
        token: str | None = self._redis.get(key)  # type: ignore[assignment]
        return token

    def _fetch_and_store(self, key: str, fetch: Fetcher) -> str:
        fetched = fetch()
        ttl = max(1, fetched.expires_in - int(EXPIRY_MARGIN.total_seconds()))
        self._redis.set(key, fetched.token, ex=ttl)
        return fetched.token
