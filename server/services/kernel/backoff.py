"""How long a failed piece of background work waits before its next try (jobs, WeChat sends)."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(
    attempts: int, *, base: timedelta, cap: timedelta, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with jitter: `base` before the second try, doubling each time up to
    `cap`, each wait drawn from 50–100 % of its step, so that rows failing together (WeChat
    down for everyone) do not all come back in the same second."""
    step = min(base * (2 ** max(attempts - 1, 0)), cap)
    return step * (rng or random).uniform(0.5, 1.0)
