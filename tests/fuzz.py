"""`make fuzz`: schemathesis's CLI, every phase (examples, coverage, fuzzing, stateful) and every
check, against the real app on a live port, as center staff and as a resident.

The app runs in this process on a fresh database (SQLite in a temporary directory, or
`FUZZ_DATABASE_URL`) holding the demo data, with the fake WeChat server on loopback. Each
audience's run prints schemathesis's own summary (operations, test cases, failures by check,
stateful links covered); the exit status is non-zero when any run found a failure.

    python -m tests.fuzz [--examples 50] [--audience center_staff|resident] [extra st args]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

from server import clock, create_app
from server.config import Config
from server.demo.seed import DEMO_PASSWORD, seed_demo
from server.models import Base
from server.services.places.areas import seed_reference
from server.wechat.fake_server import FakeWeChatServer
from server.wechat.fake_state import fake_openid

#: Operations that would end the audience's own session mid-run (tests/test_auth.py covers them).
EXCLUDED_PATHS = ("/api/v1/auth/logout",)


def _serve(workdir: Path) -> tuple[str, FakeWeChatServer]:
    fake = FakeWeChatServer(port=0)
    fake.start()
    config = Config(
        env="test",
        database_url=os.environ.get("FUZZ_DATABASE_URL", f"sqlite:///{workdir / 'fuzz.db'}"),
        upload_dir=str(workdir / "uploads"),
        wechat_api_base=fake.url,
        log_level="ERROR",
    )
    app = create_app(config)
    runtime = app.extensions["e_rescue"]
    Base.metadata.create_all(runtime.engine)
    with runtime.session_factory() as db:
        seed_reference(db)
        seed_demo(
            db,
            pii=runtime.pii,
            now=clock.now(),
            storage=runtime.storage,
            openid_for=fake_openid,
        )
        db.commit()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", fake


def _token(base: str, audience: str) -> str:
    import requests

    if audience == "center_staff":
        body = {"username": "center", "password": DEMO_PASSWORD}
        resp = requests.post(f"{base}/api/v1/auth/staff-login", json=body, timeout=30)
    else:
        resp = requests.post(
            f"{base}/api/v1/auth/wechat-login", json={"code": "user-fuzz-1"}, timeout=30
        )
    resp.raise_for_status()
    return resp.json()["token"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", 50)))
    parser.add_argument("--audience", action="append", choices=["center_staff", "resident"])
    args, extra = parser.parse_known_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="e-rescue-fuzz-") as tmp:
        base, fake = _serve(Path(tmp))
        try:
            for audience in args.audience or ["center_staff", "resident"]:
                command = [
                    str(Path(sys.executable).with_name("schemathesis")),
                    "run",
                    f"{base}/api/openapi.json",
                    "--checks",
                    "all",
                    "--max-examples",
                    str(args.examples),
                    "--seed",
                    "2021",
                    "--no-color",
                    "-H",
                    f"Authorization: Bearer {_token(base, audience)}",
                    *(f"--exclude-path={path}" for path in EXCLUDED_PATHS),
                    *extra,
                ]
                print(f"== schemathesis as {audience}, {args.examples} examples per operation")
                sys.stdout.flush()
                failed |= subprocess.run(command, check=False).returncode != 0
        finally:
            fake.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
