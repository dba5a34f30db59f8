"""One open lead per person; a signal after closure opens a new lead linked to the old one."""

from __future__ import annotations

from sqlalchemy import func, select

from server import clock
from server.models import Channel, Lead, LeadEvidence, LeadStatus
from server.services.kernel.access import SYSTEM
from server.services.leads.core import Signal, record_signal


def _signal(person="p1", key="k1", **kw):
    return Signal(
        channel=kw.pop("channel", Channel.HOTLINE),
        name="张三",
        summary="测试",
        dedup_key=key,
        person_hash=person,
        **kw,
    )


def test_signals_about_one_person_share_one_open_lead(db):
    first = record_signal(
        db, _signal(key="a", priority=2, priority_reason="热线"), actor=SYSTEM, now=clock.now()
    )
    second = record_signal(
        db, _signal(key="b", priority=3, priority_reason="医保"), actor=SYSTEM, now=clock.now()
    )
    db.commit()
    assert first.lead.id == second.lead.id and not second.lead_created
    assert second.lead.priority == 5
    assert second.lead.priority_reasons == ["热线", "医保"]


def test_the_same_signal_twice_adds_no_duplicate_evidence(db):
    record_signal(db, _signal(key="same"), actor=SYSTEM, now=clock.now())
    again = record_signal(db, _signal(key="same"), actor=SYSTEM, now=clock.now())
    db.commit()
    assert not again.evidence_added
    assert db.scalar(select(func.count()).select_from(LeadEvidence)) == 1


def test_a_signal_after_closure_opens_a_new_linked_lead(db):
    old = record_signal(db, _signal(key="a"), actor=SYSTEM, now=clock.now()).lead
    old.status, old.is_open = LeadStatus.CLOSED, False
    db.flush()
    new = record_signal(db, _signal(key="b"), actor=SYSTEM, now=clock.now())
    db.commit()
    assert new.lead_created
    assert new.lead.previous_lead_id == old.id


def test_reports_without_an_id_number_each_open_their_own_lead(db):
    record_signal(db, _signal(person=None, key="x"), actor=SYSTEM, now=clock.now())
    record_signal(db, _signal(person=None, key="y"), actor=SYSTEM, now=clock.now())
    db.commit()
    assert db.scalar(select(func.count()).select_from(Lead)) == 2
