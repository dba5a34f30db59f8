"""HTTP load for a bounded time with many connections: wrk when installed, else a threaded
Python client; req/s and p50/p90/p99 latency."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from typing import Any


def load_tool() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def load(url: str, headers: dict[str, str], duration: int, connections: int = 32) -> dict[str, Any]:
    """req/s and latency percentiles (ms) with `connections` open at once."""
    if shutil.which("wrk"):
        return _wrk(url, headers, duration, connections)
    return _threaded_client(url, headers, duration, connections)


def _wrk(url: str, headers: dict[str, str], duration: int, connections: int) -> dict[str, Any]:
    # One wrk thread drives 32 connections easily and leaves the cores to the server.
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(_search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    pct = {p: _ms(_search(rf"^\s+{p}%\s+(\S+)", out).group(1)) for p in ("50", "90", "99")}
    return {
        "rps": rps,
        "p50": pct["50"],
        "p90": pct["90"],
        "p99": pct["99"],
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": errors.group(0) if errors else "",
        "tool": f"wrk -t1 -c{connections}",
    }


def _search(pattern: str, out: str) -> re.Match[str]:
    found = re.search(pattern, out, re.M)
    if found is None:
        raise RuntimeError(f"wrk's output lacks {pattern!r}:\n{out}")
    return found


def _ms(value: str) -> float:
    """wrk's latency ("812.00us", "1.23ms", "2.01s") in milliseconds."""
    number = float(_search(r"[\d.]+", value).group(0))
    if value.endswith("us"):
        return number / 1000
    if value.endswith("ms"):
        return number
    if value.endswith("s"):
        return number * 1000
    return number


def _threaded_client(
    url: str, headers: dict[str, str], duration: int, connections: int
) -> dict[str, Any]:
    """Fallback load tool: `connections` threads, each a fresh connection per request (as wrk
    does with gunicorn's sync workers, which close every connection)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def worker() -> None:
        mine = []
        while time.monotonic() < stop:
            began = time.perf_counter()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    failures[0] += 1
            finally:
                conn.close()
            mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    return {
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5),
        "p90": percentile(latencies, 0.9),
        "p99": percentile(latencies, 0.99),
        "non_2xx": float(failures[0]),
        "socket_errors": "",
        "tool": f"python threads x{connections}",
    }


def percentile(values: Iterable[float], p: float) -> float:
    """The value below which a share `p` of `values` lies (nearest rank); 0 for none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0
