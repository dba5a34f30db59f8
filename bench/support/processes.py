"""Child processes in their own process groups, logging to files: gunicorn with
deploy/gunicorn.conf.py and the fake WeChat server, each started on a free loopback port and
waited for until it answers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Child processes, each in its own session (process group) so that stopping one stops its
    own children too (gunicorn's workers), each logging to `<logs>/<name>.log`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=dict(os.environ if env is None else env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = proc
        return proc

    def log(self, name: str, last: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-last:] if path.exists() else ""

    def kill(self, name: str) -> None:
        """SIGKILL to the whole group: what an OOM kill or a power cut does."""
        proc = self.running.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.running.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.running.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        self.running.clear()

    def died(self) -> list[str]:
        return [name for name, proc in self.running.items() if proc.poll() is not None]

    def tracebacks(self) -> dict[str, int]:
        found = {}
        for log in sorted(self.logs.glob("*.log")):
            count = log.read_text(errors="replace").count("Traceback (most recent call last)")
            if count:
                found[log.stem] = count
        return found


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def wait_until_answering(
    url: str, *, seconds: float, answers: int = 1, procs: Processes, name: str
) -> None:
    """Wait until `url` has answered `answers` times (any status below 500) while the process
    `name` lives: gunicorn's master listens before its workers have booted."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    answered = 0
    while answered < answers:
        if procs.running[name].poll() is not None:
            raise RuntimeError(f"{name} exited: {procs.log(name)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
            answered += 1
            continue
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                answered += 1
                continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} ({name}) does not answer after {seconds:.0f} s")
        time.sleep(0.2)


def start_gunicorn(
    procs: Processes,
    env: Mapping[str, str],
    *,
    app_spec: str = "server:create_app()",
    pythonpath: str = str(ROOT),
    workers: int = 2,
    ready_path: str = "/healthz",
    answers: int = 10,
    seconds: float = 60,
) -> str:
    """gunicorn with production's settings and hooks (deploy/gunicorn.conf.py) and the bench's
    sync workers, on a free loopback port, once it answers: its base URL. `env` needs
    PROMETHEUS_MULTIPROC_DIR (the metrics files of this run)."""
    port = free_port()
    argv = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--config",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--pythonpath",
        pythonpath,
        "--log-level",
        "warning",
        app_spec,
    ]
    procs.start("gunicorn", argv, env)
    base = f"http://127.0.0.1:{port}"
    wait_until_answering(
        base + ready_path, seconds=seconds, answers=answers, procs=procs, name="gunicorn"
    )
    return base


@contextmanager
def gunicorn(
    app_spec: str, env: Mapping[str, str], *, pythonpath: str, ready_path: str, workers: int = 2
) -> Iterator[str]:
    """`start_gunicorn` for the length of a block, its log and metrics in a folder of its own."""
    folder = Path(tempfile.mkdtemp(prefix="bench-gunicorn-"))
    try:
        with Processes(folder) as procs:
            full = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"), **env}
            yield start_gunicorn(
                procs,
                full,
                app_spec=app_spec,
                pythonpath=pythonpath,
                workers=workers,
                ready_path=ready_path,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def start_fake_wechat(procs: Processes, env: Mapping[str, str] | None = None) -> str:
    """The fake WeChat server in its own process, as WeChat is: its base URL once it answers."""
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", "fake-wechat", "--port", str(port)]
    procs.start("fake-wechat", argv, env)
    url = f"http://127.0.0.1:{port}/"
    wait_until_answering(url + "_fake/calls?path=none", seconds=60, procs=procs, name="fake-wechat")
    return url
