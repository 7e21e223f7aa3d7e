"""Tables of Wangge. The schema itself is owned by ``migrations/``; these
mappings describe it for queries and must match the migration head (a test
compares them).

Every tenant table carries ``county_code`` so that a province can be sharded
by county on a distributed PostgreSQL without cross-county joins.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Levels from the top down; the order is the containment order.
AREA_LEVELS: tuple[str, ...] = ("city", "county", "township", "community", "grid", "microgrid")
AREA_KINDS: tuple[str, ...] = ("land", "sea")  # a sea grid's members are vessels
RESIDENT_CATEGORIES: tuple[str, ...] = (
    "local_permanent",
    "nonlocal_permanent",
    "local_temporary",
    "nonlocal_temporary",
)

naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=naming)


class Area(Base):
    """One row per version of an area's boundary at any level.

    A version is in force on ``valid_from <= d < valid_to`` (``valid_to`` null:
    current). Parents are referenced by code, so a parent's new boundary
    version does not orphan its children.
    """

    __tablename__ = "area"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8), server_default="land")
    parent_code: Mapped[str | None] = mapped_column(String(32))
    county_code: Mapped[str | None] = mapped_column(String(12))
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(Text)
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_in("level", AREA_LEVELS), name="level"),
        CheckConstraint(_in("kind", AREA_KINDS), name="kind"),
        CheckConstraint("kind = 'land' OR level IN ('grid', 'microgrid')", name="sea_is_grid"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="validity"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        ExcludeConstraint(
            ("code", "="),
            (text("daterange(valid_from, valid_to)"), "&&"),
            name="area_one_version_at_a_time",
            using="gist",
        ),
        Index("ix_area_geom", "geom", postgresql_using="gist"),
        Index("ix_area_parent_code", "parent_code"),
        Index("ix_area_level", "level"),
        Index(
            "uq_area_current_code", "code", unique=True, postgresql_where=text("valid_to IS NULL")
        ),
    )


class Building(Base):
    """A standard-address point (标准地址): one building, or one house in a village."""

    __tablename__ = "building"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    address: Mapped[str] = mapped_column(Text)
    township: Mapped[str | None] = mapped_column(Text)
    community: Mapped[str | None] = mapped_column(Text)
    road: Mapped[str | None] = mapped_column(Text)
    house_number: Mapped[str | None] = mapped_column(Text)
    estate: Mapped[str | None] = mapped_column(Text)
    building_no: Mapped[str | None] = mapped_column(Text)
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )

    __table_args__ = (Index("ix_building_geom", "geom", postgresql_using="gist"),)


class Household(Base):
    """A dwelling (unit/floor/room in a building). ``microgrid_code`` is its
    assignment; null means not located, which is counted, never dropped."""

    __tablename__ = "household"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="RESTRICT"))
    unit: Mapped[str | None] = mapped_column(Text)
    floor: Mapped[int | None] = mapped_column(Integer)
    room: Mapped[str | None] = mapped_column(Text)
    microgrid_code: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_household_microgrid_code", "microgrid_code"),
        Index("ix_household_building_id", "building_id"),
    )


class Resident(Base):
    """A person registered at a household (minimal; the registry issue extends it)."""

    __tablename__ = "resident"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="RESTRICT")
    )
    name: Mapped[str] = mapped_column(Text)
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(24))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")

    __table_args__ = (
        CheckConstraint(_in("category", RESIDENT_CATEGORIES), name="category"),
        CheckConstraint("sex IS NULL OR sex IN ('M', 'F')", name="sex"),
        Index("ix_resident_household_id", "household_id"),
    )
