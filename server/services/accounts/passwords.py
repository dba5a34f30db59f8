"""Staff password rules (等保 level 3): length and kinds of characters, not the username, not one
of the last few, changed on first login and when too old.

Hashing is argon2id (argon2-cffi); a refusal names the rule in Chinese under `password`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.errors import ValidationFailed
from server.models import PasswordHistory, User

#: argon2id (RFC 9106) via argon2-cffi: the password-hashing competition winner, maintained and
#: with sane defaults; we tune nothing ourselves.
hasher = PasswordHasher()

_KINDS = (
    ("小写字母", str.islower),
    ("大写字母", str.isupper),
    ("数字", str.isdigit),
    ("符号", lambda c: c in string.punctuation or c == " "),
)


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    #: Of lower case, upper case, digits and symbols, how many kinds a password must mix.
    min_kinds: int = 3
    #: How many earlier passwords cannot be chosen again.
    history: int = 5
    #: Days after which a password must be changed (0: never).
    max_age_days: int = 90

    @classmethod
    def from_config(cls, config) -> PasswordPolicy:  # noqa: ANN001
        return cls(
            min_length=config.password_min_length,
            history=config.password_history,
            max_age_days=config.password_max_age_days,
        )


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password in the same time whether or not there is a hash to check it against
    (an unknown username costs one argon2 verification, as a known one does)."""
    try:
        return hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, with our parameters, made once on first use."""
    import secrets

    return hasher.hash(secrets.token_urlsafe(16))


def check_new_password(
    db: Session, *, user: User | None, username: str, password: str, policy: PasswordPolicy
) -> None:
    """Refuse a password that breaks a rule (all problems named at once)."""
    problems = []
    if len(password) < policy.min_length:
        problems.append(f"密码至少 {policy.min_length} 位")
    kinds = [name for name, test in _KINDS if any(test(c) for c in password)]
    if len(kinds) < policy.min_kinds:
        problems.append(f"密码须包含大写字母、小写字母、数字、符号中的至少 {policy.min_kinds} 种")
    if username and username.lower() in password.lower():
        problems.append("密码不能包含用户名")
    if user is not None and _used_recently(db, user, password, policy):
        problems.append(f"不能使用最近 {policy.history} 次用过的密码")
    if problems:
        raise ValidationFailed(
            "密码不符合安全要求：" + "；".join(problems),
            code="password_policy",
            errors={"password": problems},
        )


def _used_recently(db: Session, user: User, password: str, policy: PasswordPolicy) -> bool:
    if policy.history <= 0:
        return False
    earlier = [user.password_hash] if user.password_hash else []
    earlier += db.scalars(
        select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.id.desc())
        .limit(policy.history - 1)
    ).all()
    return any(verify(h, password) for h in earlier[: policy.history])


def set_password(
    db: Session,
    *,
    user: User,
    password: str,
    now: datetime,
    policy: PasswordPolicy,
    chosen_by_user: bool,
) -> None:
    """Store a new password (already checked); the old hash goes into the history.

    `chosen_by_user=False` (an account created or reset by an administrator) makes the next
    login choose a new one."""
    if user.password_hash and user.id is not None:
        db.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash, created_at=now))
        db.flush()
        _trim_history(db, user, keep=max(policy.history - 1, 0))
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.must_change_password = not chosen_by_user


def _trim_history(db: Session, user: User, *, keep: int) -> None:
    mine = PasswordHistory.user_id == user.id
    kept = select(PasswordHistory.id).where(mine).order_by(PasswordHistory.id.desc()).limit(keep)
    db.execute(
        delete(PasswordHistory)
        .where(mine, PasswordHistory.id.not_in(kept.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )


def change_due(user: User, *, now: datetime, policy: PasswordPolicy) -> str | None:
    """Why this staff member must choose a new password before working, or None."""
    if user.must_change_password:
        return "首次登录或密码被重置后，请先修改密码"
    changed = user.password_changed_at
    if policy.max_age_days and changed and now - changed >= timedelta(days=policy.max_age_days):
        return f"密码已使用超过 {policy.max_age_days} 天，请修改密码"
    return None
