"""Numbered pages: the query arguments and the answer's envelope shared by paged lists.

(The lead queue and the audit trail page by keyset cursor instead; see their modules.)
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

#: The highest page number asked for (past it every list is empty anyway).
MAX_PAGE = 1_000_000


def page_size() -> fields.Integer:
    """Rows per page, 1–100 (20): numbered pages' `per_page`, the lead queue's `limit`."""
    return fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=100, error="每页 1 到 100 条")
    )


def page_number() -> fields.Integer:
    """The page asked for, 1 to `MAX_PAGE` (1)."""
    return fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE, error=f"页码应为 1 到 {MAX_PAGE}"),
    )


class PageArgsSchema(Schema):
    page = page_number()
    per_page = page_size()


class NumberedPageSchema(Schema):
    """`total`, `page` and `per_page`; each list adds its own `items` (and any counts)."""

    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
