"""Households (户) and their one chain (一户一链).

This package owns the household record (`models/families.py`: a `Family` and its members by ID
number, with their relation to the head, address, town and village), how it is built from what
we already receive (applications' household members, visits' heads and members, the civil
affairs roster), its edits and moves (town staff and the village's helpers, each audited), the
aid decisions grant (救助台账, hooked into `services/applications/decisions.record_decision`),
and the chain: everything that happened to a household in time order with the next thing due.

Modules: `members` (who sees which, reading), `building` (from what we receive), `editing`
(staff's edits and moves), `aid` (grants and their reviews),
`chain` (the household's story). The help given in a month is counted by
`services/reports/figures.py`.
"""
