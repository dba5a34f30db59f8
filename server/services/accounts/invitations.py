"""One-time invitation codes, the same rules for a village's helpers and an organisation's
volunteers (accounts/helpers.py, social/orgs.py).

A code is drawn from characters that cannot be misread, shown once (as text and as a QR code of
the mini-program page that redeems it), stored only as a hash, valid 7 days, and redeemed once
by a resident's WeChat account. What the redeemer becomes, who may invite, and the audit rows
stay with each kind.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, Forbidden, NotFound
from server.models import Role
from server.services.kernel.access import Actor
from server.services.kernel.crypto import token_hash

#: Unambiguous characters (no 0/O, 1/I/L) so a code read aloud or typed from paper works.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
INVITATION_TTL = timedelta(days=7)


class InvitationUnusable(Conflict):
    code = "invitation_unusable"
    message = "邀请码无效、已使用、已撤销或已过期，请联系镇街工作人员重新获取"


class Invitation(Protocol):
    """The columns both invitation tables share."""

    id: Any
    code_hash: Any
    expires_at: Any
    redeemed_at: Any
    redeemed_by_id: Any
    revoked_at: Any


I = TypeVar("I", bound=Invitation)  # noqa: E741


@dataclass(frozen=True, slots=True)
class NewInvitation:
    invitation: Any
    #: The one-time code: returned once, never stored in clear.
    code: str
    #: The mini-program page that redeems it.
    redeem_page: str

    @property
    def page(self) -> str:
        return redeem_link(self.redeem_page, self.code)


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    """Codes are typed from paper: ignore case, spaces and dashes."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def redeem_link(page: str, code: str) -> str:
    """What the QR code carries: the mini-program page that redeems `code`."""
    return f"{page}?code={code}"


def issue(invitation: I, *, redeem_page: str, now: datetime) -> NewInvitation:
    """Give a new invitation row its code (hashed) and expiry; the caller adds and audits it."""
    code = new_code()
    invitation.code_hash = token_hash(code)
    invitation.expires_at = now + INVITATION_TTL
    return NewInvitation(invitation=invitation, code=code, redeem_page=redeem_page)


def usable(invitation: Invitation, now: datetime) -> bool:
    return (
        invitation.redeemed_at is None
        and invitation.revoked_at is None
        and invitation.expires_at > now
    )


def open_code(invitation: Invitation | None, code: str, *, now: datetime) -> str:
    """The normalised code of an invitation still open, for the staff who hold it (to draw its
    QR code again). Only the hash is stored, so the code comes with the request; a wrong code
    is as unknown as a wrong id."""
    normalised = normalise_code(code)
    if invitation is None or not secrets.compare_digest(
        invitation.code_hash, token_hash(normalised)
    ):
        raise NotFound("未找到该邀请")
    if not usable(invitation, now):
        raise InvitationUnusable()
    return normalised


def redeem(
    db: Session,
    model: type[I],
    code: str,
    *,
    actor: Actor,
    already: Role,
    already_message: str,
    already_code: str,
    now: datetime,
) -> I:
    """The usable invitation with this code, locked and marked redeemed by `actor`, who must be
    a resident's WeChat account (one that already holds `already` is told how to change it)."""
    if actor.role is already:
        raise Forbidden(already_message, code=already_code)
    if actor.role is not Role.RESIDENT or actor.user_id is None:
        raise Forbidden("只有通过微信登录的群众账号可以使用邀请码", code="not_a_resident")
    invitation = db.scalar(
        select(model).where(model.code_hash == token_hash(normalise_code(code))).with_for_update()
    )
    if invitation is None or not usable(invitation, now):
        raise InvitationUnusable()
    invitation.redeemed_by_id = actor.user_id
    invitation.redeemed_at = now
    return invitation
