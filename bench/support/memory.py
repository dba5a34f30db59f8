"""Peak memory of this process (for benchmarks that measure each step in a child process)."""

from __future__ import annotations

import resource
from contextlib import suppress
from pathlib import Path


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    execve, so a child would report its parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start VmHWM afresh from the current resident size (Linux: clear_refs 5)."""
    with suppress(OSError):  # not Linux, or not allowed: the peak covers it all
        Path("/proc/self/clear_refs").write_text("5")
