"""Every periodic job, listed once with when it runs (Asia/Shanghai).

The worker queues each due run itself (`queue_due`, on every pass of its loop): the run of a
day is one job whose dedup key names the job and the day, so however many workers pass, it is
queued once and runs once, and a run that fails for good never stops the next day's, which is
queued by the schedule, not by the run before it. A worker that was down catches up with the
latest missed run of each job, not with every missed day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.orm import Session

from server.clock import TZ
from server.services.dispatches import supervision
from server.services.kernel import jobs
from server.worker import duties


@dataclass(frozen=True)
class Periodic:
    kind: str
    #: Local time of day the run is due.
    at: time
    #: The day of the week (0 = Monday) for a weekly job; None: every day.
    weekday: int | None
    #: What it does, in plain words (for the README and the operator).
    what: str


SCHEDULE: tuple[Periodic, ...] = (
    Periodic(duties.PURGE_FEED_FILES, time(2, 30), None, "删除已结束批次的部门文件与过期的被拒行"),
    Periodic(duties.PRUNE_AUDIT, time(3, 0), 0, "删除超过保存期限的审计记录（每周一）"),
    Periodic(duties.CHECK_CALENDAR, time(7, 0), None, "检查今明两年的节假日安排是否已载入"),
    Periodic(supervision.JOB_KIND, time(8, 0), None, "转办单到期提醒、逾期标记与升级督办"),
)


def latest_slot(entry: Periodic, now: datetime) -> datetime:
    """The latest moment at or before `now` when `entry` was due."""
    local = now.astimezone(TZ)
    day = local.date()
    while True:
        moment = datetime.combine(day, entry.at, TZ)
        if moment <= local and (entry.weekday is None or day.weekday() == entry.weekday):
            return moment
        day -= timedelta(days=1)


def queue_due(db: Session, *, now: datetime, known: set[str] | None = None) -> list[str]:
    """Queue each job's latest due run unless it already was; returns the keys queued now.
    `known` remembers keys between passes so a worker asks the database once per run."""
    queued = []
    for entry in SCHEDULE:
        slot = latest_slot(entry, now)
        key = f"{entry.kind}:{slot:%Y-%m-%d}"
        if known is not None and key in known:
            continue
        if jobs.enqueue(db, kind=entry.kind, payload={}, now=now, run_at=slot, dedup_key=key):
            queued.append(key)
        if known is not None:
            known.add(key)
    return queued
