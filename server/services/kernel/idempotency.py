"""Once per Idempotency-Key: a retried create returns the first record, never a second one.

A client on a weak connection (a helper in a village, a resident on an old phone) cannot tell a
lost answer from a lost request, so it retries with the key it made once per form. The first
request claims the key in the same transaction as the record it creates; a repeat with the same
body gets the first record's id back; the same key with a different body is refused (409).
Two copies racing each other meet on the unique (user, key) index: the loser waits for the
winner's commit and then replays it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.errors import Conflict
from server.models import IdempotencyRecord

#: The longest key a client may send (the stored key also carries a short scope prefix).
MAX_KEY_LENGTH = 80


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "该请求编号已用于另一份不同的内容，请刷新后重新提交"


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_once(
    db: Session,
    *,
    user_id: int,
    key: str | None,
    scope: str | None,
    body: dict[str, Any],
    now: datetime,
    create: Callable[[], int],
    conflict: type[Conflict] = IdempotencyConflict,
) -> tuple[int, bool]:
    """Run `create` (which returns the new record's id) once per key; (id, created).

    Without a key the record is simply created. `scope` keeps keys of different kinds of
    record apart (None only for applications, whose keys predate scopes).
    """
    if key is None:
        return create(), True
    stored_key = f"{scope}:{key}" if scope else key
    digest = request_hash(body)
    replayed = _replay(db, user_id=user_id, key=stored_key, digest=digest, conflict=conflict)
    if replayed is not None:
        return replayed, False
    try:
        with savepoint(db):
            claim = IdempotencyRecord(
                user_id=user_id,
                key=stored_key,
                request_hash=digest,
                response_status=201,
                response_body={},
                created_at=now,
            )
            db.add(claim)
            db.flush()
    except IntegrityError:  # another request with this key won the race
        replayed = _replay(db, user_id=user_id, key=stored_key, digest=digest, conflict=conflict)
        if replayed is None:
            raise conflict() from None
        return replayed, False
    record_id = create()
    claim.response_body = {"id": record_id}
    db.flush()
    return record_id, True


def _replay(
    db: Session, *, user_id: int, key: str, digest: str, conflict: type[Conflict]
) -> int | None:
    existing = db.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise conflict()
    # Applications stored {"application_id": n} before this module existed.
    record_id = existing.response_body.get("id", existing.response_body.get("application_id"))
    if record_id is None:
        raise conflict("该内容正在提交中，请稍后查看")
    return int(record_id)
