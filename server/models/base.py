"""The declarative base, reusable column types and mixins shared by every model."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from server.clock import TZ

#: Deterministic constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class AwareDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns Asia/Shanghai; refuses naive datetimes (no hidden clocks)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to an AwareDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(TZ)


JSONType = JSON().with_variant(JSONB(), "postgresql")
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def key_string(length: int) -> String:
    """A machine key (keyed hash, content hash, dedup key, pinyin key), compared byte by byte.

    On PostgreSQL the column's collation is "C" whatever the database's: a btree index serves a
    prefix search (`name_key LIKE 'zhang%'`) only under "C" (under any other, even C.UTF-8, it is
    a sequential scan), and equality and index builds skip the locale's rules (ICU zh-Hans-CN:
    a third slower on 500,000 hashes). SQLite always compares bytes.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


intpk = Annotated[int, mapped_column(BigIntPK, primary_key=True, autoincrement=True)]
str20 = Annotated[str, mapped_column(String(20))]
str50 = Annotated[str, mapped_column(String(50))]
str100 = Annotated[str, mapped_column(String(100))]
str200 = Annotated[str, mapped_column(String(200))]
text = Annotated[str, mapped_column(Text)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: AwareDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        str: String(255),
    }


def enum_column(enum_cls: type[enum.Enum], length: int = 30) -> Any:
    """Enums are stored by value as plain strings (readable in SQL, no native enum to migrate)."""
    from sqlalchemy import Enum

    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=False,
    )


class TimestampMixin:
    #: When the row was created (UTC in the database, Shanghai time in Python).
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
