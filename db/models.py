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
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Levels from the top down; the order is the containment order.
AREA_LEVELS: tuple[str, ...] = ("city", "county", "township", "community", "grid", "microgrid")
AREA_KINDS: tuple[str, ...] = ("land", "sea")  # a sea grid's members are vessels
GEOCODE_LEVELS: tuple[str, ...] = ("building", "point", "community", "township", "county", "none")
GEOCODE_STATUSES: tuple[str, ...] = ("matched", "review", "unmatched", "manual")
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
    # Web Mercator copy for tiles, kept by the database (migration 0004).
    geom_3857: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=3857, spatial_index=False),
        Computed("ST_Transform(geom, 3857)", persisted=True),
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
    county: Mapped[str | None] = mapped_column(Text)
    village_group: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )

    __table_args__ = (
        Index("ix_building_geom", "geom", postgresql_using="gist"),
        Index("ix_building_county_code", "county_code"),
    )


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
    address: Mapped[str | None] = mapped_column(Text)
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    geocode_level: Mapped[str] = mapped_column(String(12), server_default="none")
    geocode_score: Mapped[float | None] = mapped_column(Float)
    geocode_status: Mapped[str] = mapped_column(String(12), server_default="unmatched")
    area_code: Mapped[str | None] = mapped_column(String(32))
    address_key: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(_in("geocode_level", GEOCODE_LEVELS), name="geocode_level"),
        CheckConstraint(_in("geocode_status", GEOCODE_STATUSES), name="geocode_status"),
        Index("ix_household_microgrid_code", "microgrid_code"),
        Index("ix_household_building_id", "building_id"),
        Index("ix_household_geom", "geom", postgresql_using="gist"),
        Index("ix_household_county_code", "county_code"),
        Index("ix_household_area_code", "area_code"),
        Index("uq_household_address_key", "county_code", "address_key", unique=True),
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
    hukou: Mapped[str | None] = mapped_column(Text)  # 户籍地, as written
    health_code: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_in("category", RESIDENT_CATEGORIES), name="category"),
        CheckConstraint("sex IS NULL OR sex IN ('M', 'F')", name="sex"),
        CheckConstraint(
            "health_code IS NULL OR health_code IN ('green', 'yellow', 'red')", name="health_code"
        ),
        Index("ix_resident_household_id", "household_id"),
        Index("ix_resident_tags", "tags", postgresql_using="gin"),
        Index("ix_resident_county_code", "county_code"),
    )


class Quarantine(Base):
    """Home or central quarantine of one resident: 14 days from ``start_date``
    unless extended; ``released_on`` ends it (the release notice)."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    site_name: Mapped[str | None] = mapped_column(Text)
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    start_date: Mapped[dt.date] = mapped_column(Date)
    planned_end: Mapped[dt.date] = mapped_column(Date)
    extended_to: Mapped[dt.date | None] = mapped_column(Date)
    released_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("kind IN ('home', 'central')", name="kind"),
        CheckConstraint("planned_end > start_date", name="planned_end"),
        CheckConstraint("extended_to IS NULL OR extended_to > planned_end", name="extension"),
        CheckConstraint("released_on IS NULL OR released_on >= start_date", name="release"),
        CheckConstraint("kind = 'home' OR site_name IS NOT NULL", name="central_site"),
        Index("ix_quarantine_resident_id", "resident_id"),
        Index("ix_quarantine_geom", "geom", postgresql_using="gist"),
    )


class TemperatureCheck(Base):
    """One daily temperature reading; ``fever`` is computed (≥ 37.3 °C)."""

    __tablename__ = "temperature_check"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"))
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    temperature_c: Mapped[float] = mapped_column(Numeric(3, 1))
    fever: Mapped[bool] = mapped_column(Boolean, Computed("temperature_c >= 37.3", persisted=True))

    __table_args__ = (
        CheckConstraint("temperature_c BETWEEN 30.0 AND 45.0", name="plausible"),
        Index("ix_temperature_check_resident_id", "resident_id", "checked_at"),
    )


class GeocodeReview(Base):
    """An address the geocoder would not guess: resolved by choosing a building or a point."""

    __tablename__ = "geocode_review"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(12))
    candidates: Mapped[Any] = mapped_column(JSONB, server_default="[]")
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    resolved_building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint("reason IN ('ambiguous', 'unmatched', 'fallback')", name="reason"),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index(
            "uq_geocode_review_open_household",
            "household_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )


class ImportBatch(Base):
    """One import of a file: what it held and what it did (the report)."""

    __tablename__ = "import_batch"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_applied: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    report: Mapped[Any] = mapped_column(JSONB)
    rejected_file: Mapped[bytes | None] = mapped_column(LargeBinary)
    rejected_format: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ResidentHistory(Base):
    """What changed about a resident, when, and from which source."""

    __tablename__ = "resident_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"))
    changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    source: Mapped[str] = mapped_column(Text)
    changes: Mapped[Any] = mapped_column(JSONB)

    __table_args__ = (Index("ix_resident_history_resident_id", "resident_id", "changed_at"),)


# -- screening rounds, visits, cases, checkpoints (issue 4) -----------------------------
VISIT_RESULTS: tuple[str, ...] = ("complete", "partial", "nobody_home", "refused", "vacant")
CASE_STATUSES: tuple[str, ...] = (
    "suspected",
    "confirmed",
    "asymptomatic",
    "recovered",
    "ruled_out",
)
# A case counts as active while its status (as of the date asked) is one of these.
ACTIVE_CASE_STATUSES: tuple[str, ...] = ("suspected", "confirmed", "asymptomatic")
CHECKPOINT_KINDS: tuple[str, ...] = ("highway_exit", "village_entrance", "estate_gate", "port")
HEALTH_CODES: tuple[str, ...] = ("green", "yellow", "red")


class ScreeningRound(Base):
    """One door-to-door screening of every household under ``area_code``
    (一排查), from ``start_date`` to ``end_date`` inclusive."""

    __tablename__ = "screening_round"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    area_code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="dates"),
        Index("ix_screening_round_area_code", "area_code"),
        Index("ix_screening_round_county_code", "county_code"),
    )


class Visit(Base):
    """A grid worker at a household's door in a round. A household may be
    visited more than once (nobody home, then complete); the round counts it
    complete once any of its visits is. ``distance_m`` is metres from the
    household's point to ``geom`` on the spheroid, null when either is missing."""

    __tablename__ = "visit"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    round_id: Mapped[int] = mapped_column(ForeignKey("screening_round.id", ondelete="RESTRICT"))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="RESTRICT"))
    result: Mapped[str] = mapped_column(String(12))
    persons_seen: Mapped[int] = mapped_column(Integer, server_default="0")
    note: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(Text)
    visited_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    distance_m: Mapped[float | None] = mapped_column(Float)
    far_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_in("result", VISIT_RESULTS), name="result"),
        CheckConstraint("persons_seen >= 0", name="persons_seen"),
        Index("ix_visit_round_id", "round_id", "household_id"),
        Index("ix_visit_household_id", "household_id"),
    )


class IdempotencyRecord(Base):
    """The answer given to a request carrying an ``Idempotency-Key``: the same
    key with the same body gets the same answer; with another body, a 422."""

    __tablename__ = "idempotency_record"
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Case(Base):
    """A suspected, confirmed or asymptomatic case (or one since recovered or
    ruled out), linked to a resident or, when the person is not registered, to
    a household or a bare address. It counts where the person lives, not where
    it was reported (``reported_by``). Its status on a date is the latest
    ``CaseStatusChange`` effective on or before that date."""

    __tablename__ = "case_report"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="RESTRICT"))
    household_id: Mapped[int | None] = mapped_column(
        ForeignKey("household.id", ondelete="RESTRICT")
    )
    address: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))
    reported_on: Mapped[dt.date] = mapped_column(Date)
    onset_date: Mapped[dt.date | None] = mapped_column(Date)
    reported_by: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        CheckConstraint(
            "resident_id IS NOT NULL OR household_id IS NOT NULL OR address IS NOT NULL",
            name="linked",
        ),
        CheckConstraint("onset_date IS NULL OR onset_date <= reported_on", name="onset"),
        Index("ix_case_report_resident_id", "resident_id"),
        Index("ix_case_report_household_id", "household_id"),
        Index("ix_case_report_county_code", "county_code"),
    )


class CaseStatusChange(Base):
    """One status of a case from ``effective_on``; the first is its report."""

    __tablename__ = "case_status_change"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_report.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))
    effective_on: Mapped[dt.date] = mapped_column(Date)
    changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        Index("ix_case_status_change_case_id", "case_id", "effective_on"),
    )


class Checkpoint(Base):
    """A place where people and vehicles are checked (卡口): a point and its kind."""

    __tablename__ = "checkpoint"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    geom_4326: Mapped[Any] = mapped_column(
        "geom", Geometry("POINT", srid=4326, spatial_index=False)
    )
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_in("kind", CHECKPOINT_KINDS), name="kind"),
        Index("ix_checkpoint_geom", "geom", postgresql_using="gist"),
        Index("ix_checkpoint_county_code", "county_code"),
    )


class Passage(Base):
    """A person or a vehicle through a checkpoint. ``flagged`` (computed): a
    temperature of 37.3 °C or more, or a red or yellow health code. A known
    person's passage is attributed to their home micro-grid at that time."""

    __tablename__ = "passage"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(12))
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="RESTRICT"))
    passed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    direction: Mapped[str | None] = mapped_column(String(3))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"))
    person_name: Mapped[str | None] = mapped_column(Text)
    id_number: Mapped[str | None] = mapped_column(String(18))
    phone: Mapped[str | None] = mapped_column(String(20))
    plate: Mapped[str | None] = mapped_column(String(16))
    temperature_c: Mapped[float | None] = mapped_column(Numeric(3, 1))
    health_code: Mapped[str | None] = mapped_column(String(8))
    origin: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(
        Boolean,
        Computed(
            "coalesce(temperature_c >= 37.3, false) OR coalesce(health_code IN ('red', 'yellow'), false)",
            persisted=True,
        ),
    )
    home_microgrid_code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint("direction IS NULL OR direction IN ('in', 'out')", name="direction"),
        CheckConstraint(
            "health_code IS NULL OR health_code IN ('green', 'yellow', 'red')", name="health_code"
        ),
        CheckConstraint(
            "temperature_c IS NULL OR temperature_c BETWEEN 30.0 AND 45.0", name="plausible"
        ),
        CheckConstraint(
            "resident_id IS NOT NULL OR person_name IS NOT NULL OR id_number IS NOT NULL"
            " OR plate IS NOT NULL",
            name="who",
        ),
        Index("ix_passage_checkpoint_id", "checkpoint_id", "passed_at"),
        Index("ix_passage_home_microgrid_code", "home_microgrid_code"),
        Index("ix_passage_passed_at", "passed_at"),
        Index("ix_passage_resident_id", "resident_id"),
    )


# -- serving layers (migration 0004) ---------------------------------------------------
class DataEpoch(Base):
    """A counter per table that layers read, bumped by a statement trigger on
    every write: layer caches and tile ETags are keyed by these."""

    __tablename__ = "data_epoch"
    table_name: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, server_default="0")


class LayerCache(Base):
    """Computed figures of one layer request (unlogged: rebuilt on demand)."""

    __tablename__ = "layer_cache"
    cache_key: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    numerator: Mapped[int] = mapped_column(BigInteger)
    denominator: Mapped[int] = mapped_column(BigInteger)
    class_index: Mapped[int | None] = mapped_column("class", Integer)
    colour: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    parent_code: Mapped[str | None] = mapped_column(String(32))
    households: Mapped[int] = mapped_column(BigInteger, server_default="0")
    residents: Mapped[int] = mapped_column(BigInteger, server_default="0")


class LayerCacheMeta(Base):
    """The collection members of one cached layer request (legend, round, totals)."""

    __tablename__ = "layer_cache_meta"
    cache_key: Mapped[str] = mapped_column(Text, primary_key=True)
    members: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# -- accounts and the audit trail (migration 0005) -------------------------------------------
ROLES: tuple[str, ...] = ("admin", "commander", "grid_leader", "grid_worker", "wall_viewer")
APP_ROLE = "wangge_app"  # the database role the application works as


class AppUser(Base):
    """An account: one role, scoped to the areas in ``user_scope``."""

    __tablename__ = "app_user"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(String(16))
    can_view_personal: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    password_hash: Mapped[str] = mapped_column(Text)
    token_version: Mapped[int] = mapped_column(Integer, server_default="0")
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint("length(name) BETWEEN 1 AND 64", name="name"),
    )


class UserScope(Base):
    __tablename__ = "user_scope"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    area_code: Mapped[str] = mapped_column(String(32), primary_key=True)


class LoginFailure(Base):
    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_name: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    client: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_login_failure_user_name", "user_name", "at"),)


class RevokedToken(Base):
    __tablename__ = "revoked_token"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    """Append-only (enforced by the database): who did or read what, where, why."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()")
    )
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    user_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(24))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(Text)
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(Text)
    area_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[Any] = mapped_column(JSONB)

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_user_id", "user_id", "at"),
    )
