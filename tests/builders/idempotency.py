"""Builders for retried creates (Idempotency-Key): a hand-registered hotline report's body."""

from __future__ import annotations

REPORT = {
    "channel": "hotline",
    "name": "章三",
    "summary": "邻居反映老人独居，生病无人照顾",
    "town": "chengdong",
    "categories": ["illness"],
}
