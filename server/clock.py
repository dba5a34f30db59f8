"""The only reader of the system clock. Everything else takes `now`/`today` as an input."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """Timezone-aware current time in Asia/Shanghai."""
    return datetime.now(TZ)


def today() -> date:
    return now().date()


def as_local(moment: datetime) -> datetime:
    """Interpret naive datetimes (as SQLite returns them) as UTC and convert to Shanghai time."""
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TZ)
