"""Boundary import: read a file, convert it to WGS84, check it against its
parent and siblings, and write it whole or not at all.

The same function serves ``wangge load-boundaries`` and
``POST /api/imports/boundaries``. A code already in force gets a new version
(the old one is closed on ``valid_from``), so history is never overwritten —
except a second import on the same day, which corrects that day's version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.assign import assign_households
from db.models import AREA_KINDS, AREA_LEVELS
from geo.crs import WGS84, Crs, parse_crs, to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.io import FeatureTable, FileLimits, read_feature_file
from geo.validation import (
    BoundaryFeature,
    ExistingSibling,
    Issue,
    ValidationLimits,
    ValidationReport,
    validate_boundaries,
)

CODE_FIELDS = ("code", "adcode", "code12", "CODE", "Code", "区划代码", "编码", "代码")
NAME_FIELDS = ("name", "NAME", "Name", "名称", "区划名称")
SYNTHETIC_FIELDS = ("SYNTHETIC", "synthetic")


@dataclass(frozen=True)
class BoundaryImportRequest:
    """What the caller asked for, already checked."""

    level: str
    kind: str
    parent_code: str | None
    crs: Crs | None  # None: the file's own declared CRS, else WGS84
    code_field: str | None
    name_field: str | None
    valid_from: dt.date
    dry_run: bool
    limits: ValidationLimits

    @classmethod
    def build(
        cls,
        *,
        level: str,
        parent_code: str | None = None,
        crs: str | None = None,
        code_field: str | None = None,
        name_field: str | None = None,
        kind: str = "land",
        valid_from: dt.date | None = None,
        dry_run: bool = False,
        max_vertices: int = 100_000,
    ) -> BoundaryImportRequest:
        """Check the options; ``InvalidInput``/``UnknownCRS`` say which is wrong."""
        if level not in AREA_LEVELS:
            raise InvalidInput(f"level {level!r} is not one of {', '.join(AREA_LEVELS)}")
        if kind not in AREA_KINDS:
            raise InvalidInput(f"kind {kind!r} is not one of {', '.join(AREA_KINDS)}")
        if kind == "sea" and level not in ("grid", "microgrid"):
            raise InvalidInput("only grids and micro-grids can be of kind 'sea'")
        return cls(
            level=level, kind=kind, parent_code=(parent_code or "").strip() or None,
            crs=parse_crs(crs) if crs else None, code_field=code_field, name_field=name_field,
            valid_from=valid_from or dt.date.today(), dry_run=dry_run,
            limits=ValidationLimits(max_vertices_per_feature=max_vertices),
        )  # fmt: skip


@dataclass
class BoundaryImportReport:
    """What an import found and did. ``applied`` is true only when written."""

    file: str
    level: str
    parent_code: str | None
    crs: str
    code_field: str
    name_field: str
    valid_from: dt.date
    dry_run: bool
    validation: ValidationReport
    features: int = 0
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    applied: bool = False
    households_reassigned: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "level": self.level, "parent": self.parent_code, "crs": self.crs,
            "code_field": self.code_field, "name_field": self.name_field,
            "valid_from": self.valid_from.isoformat(), "dry_run": self.dry_run,
            "applied": self.applied, "features": self.features,
            "created": self.created, "replaced": self.replaced, "notes": self.notes,
            "households_reassigned": self.households_reassigned,
            "errors": len(self.validation.errors), "warnings": len(self.validation.warnings),
            "validation": self.validation.to_dict(),
        }  # fmt: skip

    def summary(self) -> str:
        if self.applied:
            outcome = f"imported: {len(self.created)} new, {len(self.replaced)} new versions"
        elif self.validation.errors:
            outcome = "rejected: nothing written"
        else:
            outcome = "dry run: passes, nothing written"
        lines = [
            f"{self.file}: {self.features} {self.level} feature(s), CRS {self.crs},"
            f" parent {self.parent_code or '-'}, valid from {self.valid_from.isoformat()}",
            f"{len(self.validation.errors)} error(s), {len(self.validation.warnings)} warning(s); {outcome}",
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


class BoundaryRejected(InvalidInput):
    """The file failed validation; its report says every reason. Nothing was written."""

    title = "Boundary file rejected"

    def __init__(self, report: BoundaryImportReport) -> None:
        errors = report.validation.errors
        first = errors[0].message if errors else "see the report"
        super().__init__(
            f"{report.file}: {len(errors)} error(s), nothing written; first: {first}",
            extra={"report": report.as_dict()},
        )
        self.report = report


@dataclass(frozen=True)
class _Parent:
    code: str
    level: str
    county_code: str | None
    geom_4326: BaseGeometry


def import_boundary_file(
    session: Session,
    *,
    path: Path,
    request: BoundaryImportRequest,
    max_bytes: int,
    max_inflated_bytes: int,
    display_name: str | None = None,
) -> BoundaryImportReport:
    """Read ``path`` (checked against the byte caps first) and import it."""
    table = read_feature_file(
        path,
        limits=FileLimits(max_bytes=max_bytes, max_inflated_bytes=max_inflated_bytes),
        display_name=display_name,
    )
    return import_boundaries(session, table=table, request=request)


def import_boundaries(
    session: Session, *, table: FeatureTable, request: BoundaryImportRequest
) -> BoundaryImportReport:
    """Validate every feature, then write all of them in the caller's
    transaction, or raise ``BoundaryRejected`` having written nothing."""
    parent = _load_parent(session, request=request)
    crs, notes = _source_crs(table=table, request=request)
    code_field = _pick_field(table, wanted=request.code_field, candidates=CODE_FIELDS, what="code")
    name_field = _pick_field(table, wanted=request.name_field, candidates=NAME_FIELDS, what="name")
    features = [
        BoundaryFeature(
            index=raw.row,
            code=_text(raw.properties.get(code_field)),
            name=_text(raw.properties.get(name_field)),
            geom_4326=_as_multipolygon(to_wgs84(raw.geometry, crs=crs))
            if raw.geometry is not None
            else None,
        )
        for raw in table.features
    ]
    codes = [f.code for f in features if f.code]
    validation = validate_boundaries(
        features,
        parent_geom_4326=parent.geom_4326 if parent else None,
        existing_siblings=_stored_siblings(session, request=request, exclude=codes),
        limits=request.limits,
    )
    if parent is None:
        notes.append("no parent given: containment is not checked")
    report = BoundaryImportReport(
        file=table.name, level=request.level, parent_code=request.parent_code, crs=crs.label,
        code_field=code_field, name_field=name_field, valid_from=request.valid_from,
        dry_run=request.dry_run, validation=validation, features=len(features), notes=notes,
    )  # fmt: skip
    _check_stored_codes(session, request=request, codes=codes, report=report)
    if validation.errors:
        raise BoundaryRejected(report)
    if not request.dry_run:
        synthetic = [_is_synthetic(raw.properties) for raw in table.features]
        _write(
            session,
            request=request,
            parent=parent,
            features=features,
            synthetic=synthetic,
            report=report,
        )
        report.applied = True
    return report


# -- reading the request against what is stored -----------------------------------
def _load_parent(session: Session, *, request: BoundaryImportRequest) -> _Parent | None:
    if request.parent_code is None:
        return None
    row = session.execute(
        text(
            "SELECT code, level, county_code, ST_AsBinary(geom) FROM area"
            " WHERE code = :code AND valid_from <= :day AND (valid_to IS NULL OR valid_to > :day)"
        ),
        {"code": request.parent_code, "day": request.valid_from},
    ).first()
    if row is None:
        raise NotFound(
            f"parent area {request.parent_code!r} does not exist on {request.valid_from.isoformat()}"
        )
    parent = _Parent(
        code=row[0], level=row[1], county_code=row[2], geom_4326=shapely.from_wkb(bytes(row[3]))
    )
    if AREA_LEVELS.index(parent.level) >= AREA_LEVELS.index(request.level):
        raise InvalidInput(
            f"a {request.level} cannot lie under {parent.code}, which is a {parent.level};"
            f" levels from the top: {', '.join(AREA_LEVELS)}"
        )
    return parent


def _stored_siblings(
    session: Session, *, request: BoundaryImportRequest, exclude: list[str]
) -> list[ExistingSibling]:
    """Siblings in force that this import does not replace (they must not be overlapped)."""
    parent_clause = (
        "parent_code = :parent" if request.parent_code else "parent_code IS NULL AND level = :level"
    )
    rows = session.execute(
        text(
            f"SELECT code, name, ST_AsBinary(geom) FROM area WHERE {parent_clause}"
            " AND valid_to IS NULL AND NOT (code = ANY(:exclude))"
        ),
        {"parent": request.parent_code, "level": request.level, "exclude": exclude},
    ).all()
    return [
        ExistingSibling(code=code, name=name, geom_4326=shapely.from_wkb(bytes(wkb)))
        for code, name, wkb in rows
    ]


def _check_stored_codes(
    session: Session,
    *,
    request: BoundaryImportRequest,
    codes: list[str],
    report: BoundaryImportReport,
) -> None:
    """A code in force elsewhere in the hierarchy is an error, not a silent move."""
    rows = session.execute(
        text(
            "SELECT code, level, parent_code, valid_from FROM area"
            " WHERE code = ANY(:codes) AND valid_to IS NULL"
        ),
        {"codes": codes},
    ).all()
    for code, level, parent_code, valid_from in rows:
        if level != request.level or parent_code != request.parent_code:
            report.validation.issues.append(Issue(
                severity="error", rule="code_in_use", feature=None, code=code,
                message=f"code {code} is already a {level} under {parent_code or 'no parent'};"
                f" it cannot become a {request.level} under {request.parent_code or 'no parent'}",
            ))  # fmt: skip
        elif valid_from > request.valid_from:
            report.validation.issues.append(Issue(
                severity="error", rule="version_order", feature=None, code=code,
                message=f"{code} has a version from {valid_from.isoformat()}, later than"
                f" {request.valid_from.isoformat()}",
            ))  # fmt: skip


def _source_crs(*, table: FeatureTable, request: BoundaryImportRequest) -> tuple[Crs, list[str]]:
    """The CRS of the file's coordinates: what the caller said, else what the file declares."""
    notes: list[str] = []
    declared = _declared_crs(table.declared_crs)
    if request.crs is not None:
        if declared is not None and declared.kind == "epsg" and request.crs != declared:
            notes.append(f"the file declares {declared.label}; used {request.crs.label} as asked")
        return request.crs, notes
    return declared or WGS84, notes


def _declared_crs(value: str | None) -> Crs | None:
    if not value:
        return None
    try:
        return parse_crs(value)
    except InvalidInput:
        return None


def _pick_field(
    table: FeatureTable, *, wanted: str | None, candidates: tuple[str, ...], what: str
) -> str:
    if wanted is not None:
        if wanted not in table.fields:
            raise InvalidInput(
                f"{table.name}: no field {wanted!r} for the {what}; fields: {', '.join(table.fields) or 'none'}"
            )
        return wanted
    for candidate in candidates:
        if candidate in table.fields:
            return candidate
    raise InvalidInput(
        f"{table.name}: no {what} field found (looked for {', '.join(candidates)});"
        f" name it with --{what}-field; fields: {', '.join(table.fields) or 'none'}"
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    stripped = str(value).strip()
    return stripped or None


def _as_multipolygon(geom: BaseGeometry) -> BaseGeometry:
    return MultiPolygon([geom]) if isinstance(geom, Polygon) else geom


def _is_synthetic(properties: dict[str, Any]) -> bool:
    return any(properties.get(name) in (True, 1, "true", "True", "1") for name in SYNTHETIC_FIELDS)


# -- writing --------------------------------------------------------------------------
_CLOSE = text(
    "UPDATE area SET valid_to = :day WHERE code = :code AND valid_to IS NULL AND valid_from < :day"
)
_CORRECT = text(
    "UPDATE area SET name = :name, geom = ST_GeomFromWKB(:wkb, 4326), version = version + 1,"
    " source = :source, synthetic = :synthetic"
    " WHERE code = :code AND valid_to IS NULL AND valid_from = :day"
)
_INSERT = text(
    "INSERT INTO area (code, name, level, kind, parent_code, county_code, synthetic, version,"
    " valid_from, source, geom)"
    " VALUES (:code, :name, :level, :kind, :parent, :county, :synthetic,"
    " coalesce((SELECT max(version) FROM area WHERE code = CAST(:code AS varchar)), 0) + 1,"
    " :day, :source, ST_GeomFromWKB(:wkb, 4326))"
)


def _write(
    session: Session,
    *,
    request: BoundaryImportRequest,
    parent: _Parent | None,
    features: list[BoundaryFeature],
    synthetic: list[bool],
    report: BoundaryImportReport,
) -> None:
    day = request.valid_from
    for feature, is_synthetic in zip(features, synthetic, strict=True):
        assert feature.code is not None and feature.geom_4326 is not None  # validated above
        params = {
            "code": feature.code, "name": feature.name, "level": request.level, "kind": request.kind,
            "parent": request.parent_code, "county": _county_code(request, parent, feature.code),
            "synthetic": is_synthetic, "day": day, "source": report.file,
            "wkb": shapely.to_wkb(feature.geom_4326),
        }  # fmt: skip
        if session.execute(_CORRECT, params).rowcount:  # type: ignore[attr-defined]
            report.replaced.append(feature.code)
            continue
        closed = session.execute(_CLOSE, params).rowcount  # type: ignore[attr-defined]
        session.execute(_INSERT, params)
        (report.replaced if closed else report.created).append(feature.code)
    session.flush()
    county = _county_code(request, parent, features[0].code or "") if features else None
    if request.level == "microgrid" and county is not None:
        # New micro-grid boundaries move households: reassign exactly those.
        moved = assign_households(
            session.connection(),
            county_code=county,
            microgrid_codes=report.created + report.replaced,
        )
        report.households_reassigned = moved.changed


def _county_code(request: BoundaryImportRequest, parent: _Parent | None, code: str) -> str | None:
    """Tenant key: a county is its own; below it, inherited from the parent."""
    if request.level == "county":
        return code
    return parent.county_code if parent else None
