"""Typed SQLAlchemy models, one module per domain. Importing this package registers them all."""

from server.models.accounts import STAFF_ROLES, AuthToken, LoginThrottle, Role, User
from server.models.applications import (
    UNDECIDED,
    Application,
    ApplicationEvent,
    ApplicationPhoto,
    ApplicationStatus,
    ApplicationType,
    IdempotencyRecord,
)
from server.models.areas import Department, Town, TownKind, Village
from server.models.audit import AuditEntry
from server.models.base import Base
from server.models.calendar import CalendarDay, CalendarYear
from server.models.helpers import HelperInvitation
from server.models.jobs import Job, JobStatus
from server.models.leads import OPEN_STATUSES, Channel, Lead, LeadEvidence, LeadStatus
from server.models.notifications import (
    InboxMessage,
    OutboxMessage,
    OutboxState,
    Subscription,
    SubscriptionStatus,
)
from server.models.photos import Photo
from server.models.wechat import WeChatAccessToken

__all__ = [
    "OPEN_STATUSES",
    "STAFF_ROLES",
    "UNDECIDED",
    "Application",
    "ApplicationEvent",
    "ApplicationPhoto",
    "ApplicationStatus",
    "ApplicationType",
    "AuditEntry",
    "AuthToken",
    "Base",
    "CalendarDay",
    "CalendarYear",
    "Channel",
    "Department",
    "HelperInvitation",
    "IdempotencyRecord",
    "InboxMessage",
    "Job",
    "JobStatus",
    "Lead",
    "LeadEvidence",
    "LeadStatus",
    "LoginThrottle",
    "OutboxMessage",
    "OutboxState",
    "Photo",
    "Role",
    "Subscription",
    "SubscriptionStatus",
    "Town",
    "TownKind",
    "User",
    "Village",
    "WeChatAccessToken",
]
