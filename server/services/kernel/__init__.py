"""The kernel every domain stands on: who is acting and what they may see (`access`), the
append-only audit trail and its hash chain (`audit`, `audit_chain`), sealing and hashing personal
data (`pii`, `crypto`, `rotation`), ID numbers (`idnumber`), the one text rule (`text`),
Idempotency-Key handling (`idempotency`) and the workbook writer (`workbooks`).

It imports no other service package.
"""
