"""marshmallow fields that apply the house's input rules, for the API's and the console's schemas
alike: text through `services/kernel/text.py`, integers bounded to the column they end up in.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from server.services.kernel import text

#: The largest value of the columns integers end up in: BIGINT ids, INTEGER counts and codes.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


class Text(fields.String):
    """A string that the text rule accepts, `min_len`–`max_len` characters long. Single-line
    by default (names, codes, addresses); `multi_line=True` allows tab, LF and CR (notes)."""

    def __init__(
        self,
        max_len: int | None = None,
        *,
        min_len: int = 0,
        multi_line: bool = False,
        **kwargs: Any,
    ) -> None:
        validators = list(kwargs.pop("validate", None) or [])
        if not isinstance(validators, list):  # pragma: no cover - a single callable
            validators = [validators]
        if max_len is not None or min_len:
            validators.insert(0, validate.Length(min=min_len, max=max_len))
        super().__init__(validate=validators, **kwargs)
        self.single_line = not multi_line

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        message = text.describe(
            result, field=self.data_key or self.name or "", single_line=self.single_line
        )
        if message is not None:
            raise ValidationError(message)
        return result


#: How money leaves us: a decimal string of yuan ("6000.00"), never a JSON number.
MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


class Money(fields.Decimal):
    """An amount of yuan in an answer, as an exact decimal string ("6000.00"; `places` digits
    after the point). JSON numbers are binary floats in the mini-program's JavaScript, where
    0.1 + 0.2 is not 0.3; a string keeps the amount exactly as the database holds it
    (NUMERIC), and the clients already read strings. The OpenAPI document says `string` with
    format `decimal` (registered in api/__init__.py), so documentation and answers agree.
    Amounts *sent to us* are `fields.Decimal` and may be a JSON number or such a string."""

    def __init__(self, *, places: int | None = 2, **kwargs: Any) -> None:
        metadata = {"pattern": MONEY_PATTERN, "example": "6000.00", **kwargs.pop("metadata", {})}
        super().__init__(places=places, as_string=True, metadata=metadata, **kwargs)


def bounded_int(*, low: int = 1, high: int = INT64_MAX, **kwargs: Any) -> fields.Integer:
    """An integer in [low, high]: by default an id (1 … BIGINT's largest)."""
    validators = [validate.Range(min=low, max=high)]
    extra = kwargs.pop("validate", None)
    if extra is not None:
        validators.extend(extra if isinstance(extra, list) else [extra])
    return fields.Integer(validate=validators, **kwargs)
