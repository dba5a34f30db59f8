"""The one rule for how signals change a lead: which are new, which categories and priority
reasons they add, and how many points.

A pure function over plain values (no database): `record_signal` (one signal), the feed
importer's set-based path (many signals per person, stored in bulk) and `merge_leads` (the
folded lead's evidence) all call `apply_signals` and store what it decides, so the same signals
give the same priority whichever way they arrive.

The rule:
* a signal whose dedup key the lead already holds (or that came twice in the same call) adds
  nothing;
* each new category is added once, in arrival order;
* each priority reason is counted once: the first signal bringing a reason the lead does not
  have yet adds the reason and its points; a later signal with the same reason adds no points.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Gain:
    """What one signal would bring to a lead."""

    dedup_key: str
    categories: Sequence[str] = ()
    #: The points it is worth and their explanation ("医保: 单次自付 ¥32,400"); a signal without
    #: a reason raises nothing.
    points: int = 0
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LeadState:
    """What a lead holds before the signals arrive."""

    categories: Sequence[str] = ()
    priority: int = 0
    reasons: Sequence[str] = ()
    #: Dedup keys of the evidence it already carries (those signals add nothing again).
    evidence_keys: frozenset[str] | set[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Change:
    """What the signals change: the lead's new values, and exactly what was added (a merge
    keeps it so an undo takes away only that)."""

    categories: list[str]
    priority: int
    reasons: list[str]
    #: The signals that are new to the lead (in arrival order): only these become evidence.
    fresh: list[Gain] = field(default_factory=list)
    added_categories: list[str] = field(default_factory=list)
    added_reasons: list[str] = field(default_factory=list)
    added_points: int = 0
    #: The points each fresh signal was counted for (0 when its reason was known already).
    counted: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.fresh)


def apply_signals(state: LeadState, gains: Iterable[Gain]) -> Change:
    """The change `gains` make to a lead in `state` (see the module's rule)."""
    categories = list(state.categories)
    reasons = list(state.reasons)
    known_categories, known_reasons = set(categories), set(reasons)
    seen_keys = set(state.evidence_keys)
    fresh: list[Gain] = []
    added_categories: list[str] = []
    added_reasons: list[str] = []
    counted: dict[str, int] = {}
    points = 0
    for gain in gains:
        if gain.dedup_key in seen_keys:
            continue
        seen_keys.add(gain.dedup_key)
        fresh.append(gain)
        for category in gain.categories:
            if category not in known_categories:
                known_categories.add(category)
                categories.append(category)
                added_categories.append(category)
        worth = 0
        if gain.reason and gain.reason not in known_reasons:
            known_reasons.add(gain.reason)
            reasons.append(gain.reason)
            added_reasons.append(gain.reason)
            worth = gain.points
        counted[gain.dedup_key] = worth
        points += worth
    return Change(
        categories=categories,
        priority=state.priority + points,
        reasons=reasons,
        fresh=fresh,
        added_categories=added_categories,
        added_reasons=added_reasons,
        added_points=points,
        counted=counted,
    )
