"""Checks on a boundary import, run before anything is written.

The import is a set of sibling areas (features of one uploaded file), optionally with
the parent area they must lie in and the siblings already stored under that parent.
:func:`validate_boundaries` never raises for bad features: it returns a
:class:`ValidationReport` listing every problem it found, each with a stable rule id,
the feature's row, a message a person can act on, and where on the map it is.

Rule ids (stable; clients may switch on them):

=====================  ========  ==========================================================
rule                   severity  what
=====================  ========  ==========================================================
geometry_type          error     geometry missing, empty, or not a Polygon/MultiPolygon
coordinate_range       error     coordinates not finite or not lon/lat degrees
too_many_vertices      error     more vertices than the cap (default 100,000 per feature)
invalid_geometry       error     not OGC-valid (self-intersection, hole outside shell, …)
missing_code           error     code absent or blank
missing_name           error     name absent or blank
duplicate_code         error     code used twice in the file, or by a stored sibling
duplicate_name         error     name used twice among the siblings
outside_parent         error     part of the area lies more than 1 m beyond the parent
sibling_overlap        error     two siblings share more than 1 m² of area
gap                    warning   > 1 m² of the parent (or a hole among siblings) uncovered
=====================  ========  ==========================================================

The 1 m / 1 m² figures are the defaults of :class:`ValidationLimits`.

Metric rules work in metres in a local equal-area projection (:class:`geo.crs.LocalMetric`),
never in degrees. Features that fail the shape rules are still reported; in the
topological rules an invalid polygon takes part as its ``make_valid`` repair, and a
feature with the wrong type, bad coordinates or too many vertices takes no part.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.crs import LocalMetric, local_metric_crs
from geo.errors import InvalidInput

Severity = Literal["error", "warning"]
Unit = Literal["m", "m2"]

RULE_GEOMETRY_TYPE = "geometry_type"
RULE_COORDINATE_RANGE = "coordinate_range"
RULE_TOO_MANY_VERTICES = "too_many_vertices"
RULE_INVALID_GEOMETRY = "invalid_geometry"
RULE_MISSING_CODE = "missing_code"
RULE_MISSING_NAME = "missing_name"
RULE_DUPLICATE_CODE = "duplicate_code"
RULE_DUPLICATE_NAME = "duplicate_name"
RULE_OUTSIDE_PARENT = "outside_parent"
RULE_SIBLING_OVERLAP = "sibling_overlap"
RULE_GAP = "gap"

RULES = (
    RULE_GEOMETRY_TYPE,
    RULE_COORDINATE_RANGE,
    RULE_TOO_MANY_VERTICES,
    RULE_INVALID_GEOMETRY,
    RULE_MISSING_CODE,
    RULE_MISSING_NAME,
    RULE_DUPLICATE_CODE,
    RULE_DUPLICATE_NAME,
    RULE_OUTSIDE_PARENT,
    RULE_SIBLING_OVERLAP,
    RULE_GAP,
)

# Below this, a difference of polygons is floating-point noise, not a real sliver.
_AREA_NOISE_M2 = 0.01
# Gap search snaps to a 1 mm grid: shared edges converted from another CRS meet only to
# within nanometres, and such hairline channels would otherwise connect an enclosed
# hole to the outside and hide it. Real gaps are far wider than a millimetre.
_GAP_GRID_M = 0.001
_LOCATION_DECIMALS = 6
_REASON_PATTERN = re.compile(r"^(?P<reason>.*?)\s*\[(?P<x>\S+)\s+(?P<y>\S+)\]\s*$")


# --------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundaryFeature:
    """One feature of the import.

    ``index`` is the feature's **1-based row** in the uploaded file, in file order (the
    first feature is row 1, as ``geo.io.RawFeature.row``); issues echo it.
    ``geom_4326`` is WGS84 lon/lat, already converted from the file's CRS.
    """

    index: int
    code: str | None
    name: str | None
    geom_4326: BaseGeometry | None


@dataclass(frozen=True)
class ExistingSibling:
    """A stored area under the same parent that this import does not replace."""

    code: str
    geom_4326: BaseGeometry
    name: str | None = None


@dataclass(frozen=True)
class ValidationLimits:
    """Caps and tolerances of the checks (metres and square metres)."""

    max_vertices_per_feature: int = 100_000
    containment_tolerance_m: float = 1.0
    overlap_tolerance_m2: float = 1.0
    gap_min_m2: float = 1.0


DEFAULT_LIMITS = ValidationLimits()


@dataclass(frozen=True)
class Issue:
    """One problem. ``feature`` is the 1-based row (None for a stored sibling or a gap);
    ``location`` is (lon, lat) in WGS84; ``measure`` is in ``unit`` (a plain count when
    ``unit`` is None)."""

    severity: Severity
    rule: str
    feature: int | None
    code: str | None
    message: str
    location: tuple[float, float] | None = None
    measure: float | None = None
    unit: Unit | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "rule": self.rule,
            "feature": self.feature,
            "code": self.code,
            "message": self.message,
            "location": None if self.location is None else list(self.location),
            "measure": self.measure,
            "unit": self.unit,
        }


@dataclass
class ValidationReport:
    """Every issue found; the import may proceed only when :attr:`ok`."""

    issues: list[Issue] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings such as gaps do not block)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain dicts, lists, strings and numbers."""
        return {
            "ok": self.ok,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "issues": [issue.to_dict() for issue in self.issues],
        }


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def validate_boundaries(
    features: Sequence[BoundaryFeature],
    *,
    parent_geom_4326: BaseGeometry | None = None,
    existing_siblings: Sequence[ExistingSibling] = (),
    limits: ValidationLimits = DEFAULT_LIMITS,
) -> ValidationReport:
    """Check an import of sibling areas; report every problem, raise for none of them.

    ``parent_geom_4326`` (WGS84), when given, is the area all features must lie in and
    should cover. ``existing_siblings`` are stored siblings that stay: their codes and
    names are taken, and they count for overlaps and gaps. Raises
    :class:`geo.errors.InvalidInput` only when the parent itself is unusable.
    """
    parent = _usable_parent(parent_geom_4326)
    issues: list[Issue] = []
    usable: list[tuple[BoundaryFeature, BaseGeometry]] = []
    for feature in features:
        shape_issues, geom = _check_shape(feature, limits=limits)
        issues.extend(shape_issues)
        if geom is not None:
            usable.append((feature, geom))
    issues.extend(_check_attributes(features, existing_siblings=existing_siblings))
    issues.extend(
        _check_topology(usable, parent=parent, existing_siblings=existing_siblings, limits=limits)
    )
    return ValidationReport(issues=issues)


def _usable_parent(parent_geom_4326: BaseGeometry | None) -> BaseGeometry | None:
    if parent_geom_4326 is None:
        return None
    parent = _polygonal_part(_repaired(parent_geom_4326))
    if parent is None:
        raise InvalidInput("the parent area has no polygon geometry to check against")
    return parent


# --------------------------------------------------------------------------------------
# Per-feature shape rules
# --------------------------------------------------------------------------------------


def _describe(feature: BoundaryFeature) -> str:
    """'row 3 (code 445321, 新兴县)': how messages name a feature."""
    code, name = _clean(feature.code), _clean(feature.name)
    details = ([f"code {code}"] if code else []) + ([name] if name else [])
    suffix = f" ({', '.join(details)})" if details else ""
    return f"row {feature.index}{suffix}"


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    stripped = str(text).strip()
    return stripped or None


def _issue(
    rule: str,
    *,
    feature: BoundaryFeature | None,
    message: str,
    severity: Severity = "error",
    code: str | None = None,
    location: tuple[float, float] | None = None,
    measure: float | None = None,
    unit: Unit | None = None,
) -> Issue:
    return Issue(
        severity=severity,
        rule=rule,
        feature=None if feature is None else feature.index,
        code=code if feature is None else _clean(feature.code),
        message=message,
        location=_rounded_location(location),
        measure=measure,
        unit=unit,
    )


def _rounded_location(location: tuple[float, float] | None) -> tuple[float, float] | None:
    if location is None or not all(math.isfinite(v) for v in location):
        return None
    return (round(location[0], _LOCATION_DECIMALS), round(location[1], _LOCATION_DECIMALS))


def _check_shape(
    feature: BoundaryFeature, *, limits: ValidationLimits
) -> tuple[list[Issue], BaseGeometry | None]:
    """Shape rules for one feature; also returns the geometry the topological rules may
    use (its polygonal ``make_valid`` repair when invalid), or None to leave it out."""
    geom = feature.geom_4326
    who = _describe(feature)
    if geom is None or geom.is_empty or not isinstance(geom, Polygon | MultiPolygon):
        kind = "no geometry" if geom is None or geom.is_empty else f"a {geom.geom_type}"
        message = f"{who} has {kind}; a boundary must be a Polygon or MultiPolygon"
        return [_issue(RULE_GEOMETRY_TYPE, feature=feature, message=message)], None
    coordinate_issue = _check_coordinates(feature, geom=geom)
    if coordinate_issue is not None:
        return [coordinate_issue], None
    vertex_count = shapely.get_num_coordinates(geom)
    if vertex_count > limits.max_vertices_per_feature:
        message = (
            f"{who} has {vertex_count:,} vertices; the limit is "
            f"{limits.max_vertices_per_feature:,} per feature (simplify it first)"
        )
        issue = _issue(
            RULE_TOO_MANY_VERTICES, feature=feature, message=message, measure=float(vertex_count)
        )
        # Skipped by everything else: the cap exists so huge inputs cost nothing more.
        return [issue], None
    return _check_validity(feature, geom=geom)


def _check_coordinates(feature: BoundaryFeature, *, geom: BaseGeometry) -> Issue | None:
    coords = shapely.get_coordinates(geom)
    finite = bool(np.all(np.isfinite(coords)))
    lon, lat = coords[:, 0], coords[:, 1]
    in_range = finite and bool(
        np.all((lon >= -180.0) & (lon <= 180.0) & (lat >= -90.0) & (lat <= 90.0))
    )
    if in_range:
        return None
    if not finite:
        detail = "some coordinates are not finite numbers (NaN or infinity)"
    else:
        detail = (
            f"coordinates run from x {lon.min():.6g} to {lon.max():.6g} and y {lat.min():.6g} "
            f"to {lat.max():.6g}, which are not lon/lat degrees; is the file's CRS declared?"
        )
    return _issue(RULE_COORDINATE_RANGE, feature=feature, message=f"{_describe(feature)}: {detail}")


def _check_validity(
    feature: BoundaryFeature, *, geom: BaseGeometry
) -> tuple[list[Issue], BaseGeometry | None]:
    reason = shapely.is_valid_reason(geom)
    if reason == "Valid Geometry":
        return [], geom
    text, location = _parse_reason(reason)
    where = "" if location is None else f" at ({location[0]:.6f}, {location[1]:.6f})"
    message = f"{_describe(feature)} is not a valid polygon: {text}{where}"
    issue = _issue(RULE_INVALID_GEOMETRY, feature=feature, message=message, location=location)
    return [issue], _polygonal_part(_repaired(geom))


def _parse_reason(reason: str) -> tuple[str, tuple[float, float] | None]:
    """Split GEOS's 'Self-intersection[112.2 22.7]' into text and (lon, lat)."""
    match = _REASON_PATTERN.match(reason)
    if match is None:
        return reason.lower(), None
    try:
        location = (float(match.group("x")), float(match.group("y")))
    except ValueError:
        location = None
    return match.group("reason").lower(), location


def _repaired(geom: BaseGeometry) -> BaseGeometry:
    return geom if geom.is_valid else shapely.make_valid(geom)


def _polygonal_part(geom: BaseGeometry) -> BaseGeometry | None:
    """The Polygon/MultiPolygon content of ``geom`` (drops stray lines and points)."""
    if isinstance(geom, Polygon | MultiPolygon):
        return None if geom.is_empty else geom
    polygons = [
        part for part in shapely.get_parts(geom) if isinstance(part, Polygon | MultiPolygon)
    ]
    if not polygons:
        return None
    return shapely.union_all(polygons)


# --------------------------------------------------------------------------------------
# Attribute rules
# --------------------------------------------------------------------------------------


def _name_key(name: str) -> str:
    # NFKC folds full-width forms ('１号网格' == '1号网格'), which people type by accident.
    return unicodedata.normalize("NFKC", name).strip()


def _check_attributes(
    features: Sequence[BoundaryFeature], *, existing_siblings: Sequence[ExistingSibling]
) -> list[Issue]:
    issues: list[Issue] = []
    for feature in features:
        who = _describe(feature)
        if _clean(feature.code) is None:
            message = f"{who} has no code; every area needs one"
            issues.append(_issue(RULE_MISSING_CODE, feature=feature, message=message))
        if _clean(feature.name) is None:
            message = f"{who} has no name; every area needs one"
            issues.append(_issue(RULE_MISSING_NAME, feature=feature, message=message))
    issues.extend(_check_duplicate_codes(features, existing_siblings=existing_siblings))
    issues.extend(_check_duplicate_names(features, existing_siblings=existing_siblings))
    return issues


def _check_duplicate_codes(
    features: Sequence[BoundaryFeature], *, existing_siblings: Sequence[ExistingSibling]
) -> list[Issue]:
    return _check_duplicates(
        features, rule=RULE_DUPLICATE_CODE, what="code", value=lambda f: f.code, key=lambda v: v,
        stored={code: code for s in existing_siblings if (code := _clean(s.code)) is not None},
    )  # fmt: skip


def _check_duplicate_names(
    features: Sequence[BoundaryFeature], *, existing_siblings: Sequence[ExistingSibling]
) -> list[Issue]:
    return _check_duplicates(
        features, rule=RULE_DUPLICATE_NAME, what="name", value=lambda f: f.name, key=_name_key,
        stored={_name_key(n): s.code for s in existing_siblings if (n := _clean(s.name)) is not None},
    )  # fmt: skip


def _check_duplicates(
    features: Sequence[BoundaryFeature],
    *,
    rule: str,
    what: str,
    value: Callable[[BoundaryFeature], str | None],
    key: Callable[[str], str],
    stored: dict[str, str],
) -> list[Issue]:
    """One issue per feature whose ``what`` repeats a stored sibling's (``stored``
    maps key → that sibling's code) or an earlier row's."""
    first_row: dict[str, int] = {}
    issues: list[Issue] = []
    for feature in features:
        text = _clean(value(feature))
        if text is None:
            continue
        k = key(text)
        if k in stored:
            message = (
                f"{_describe(feature)}: {what} {text} is already used by the stored sibling "
                f"area {stored[k]}, which this import does not replace"
            )
            issues.append(_issue(rule, feature=feature, message=message))
        if k in first_row:
            message = f"{_describe(feature)}: {what} {text} is already used by row {first_row[k]}"
            issues.append(_issue(rule, feature=feature, message=message))
        else:
            first_row[k] = feature.index
    return issues


# --------------------------------------------------------------------------------------
# Topological rules, in metres
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sibling:
    """A polygon taking part in the topological rules, projected to metres."""

    feature: BoundaryFeature | None  # None for a stored sibling
    code: str | None
    geom_m: BaseGeometry

    @property
    def label(self) -> str:
        if self.feature is not None:
            return _describe(self.feature)
        return f"stored sibling {self.code}"


_DENSIFY_DEG = 2e-4  # about 20 m: the chord's sag is then under 0.1 mm


def _check_topology(
    usable: list[tuple[BoundaryFeature, BaseGeometry]],
    *,
    parent: BaseGeometry | None,
    existing_siblings: Sequence[ExistingSibling],
    limits: ValidationLimits,
) -> list[Issue]:
    stored = [
        (sibling, geom)
        for sibling in existing_siblings
        if (geom := _polygonal_part(_repaired(sibling.geom_4326))) is not None
    ]
    extent = [geom for _, geom in usable] + [geom for _, geom in stored]
    if parent is not None:
        extent.append(parent)
    if not extent:
        return []
    metric = local_metric_crs(shapely.box(*shapely.total_bounds(extent)))
    # Edges are straight in lon/lat (as PostGIS reads them), not in the projection:
    # a long shared edge projected as one chord would part from its neighbour's
    # shorter chords and fake a sliver overlap. Densify first so chords follow it.
    densified = shapely.segmentize(np.array(extent, dtype=object), max_segment_length=_DENSIFY_DEG)
    projected = metric.many_to_metres(densified)
    siblings = [
        _Sibling(feature=feature, code=_clean(feature.code), geom_m=projected[i])
        for i, (feature, _) in enumerate(usable)
    ]
    offset = len(usable)
    siblings += [
        _Sibling(feature=None, code=_clean(sibling.code), geom_m=projected[offset + i])
        for i, (sibling, _) in enumerate(stored)
    ]
    parent_m = projected[-1] if parent is not None else None
    new_count = len(usable)
    issues: list[Issue] = []
    if parent_m is not None:
        issues += _check_outside_parent(
            siblings[:new_count], parent_m=parent_m, metric=metric, limits=limits
        )
    issues += _check_overlaps(siblings, new_count=new_count, metric=metric, limits=limits)
    issues += _check_gaps(siblings, parent_m=parent_m, metric=metric, limits=limits)
    return issues


def _location(geom_m: BaseGeometry, *, metric: LocalMetric) -> tuple[float, float] | None:
    """A point on the surface of ``geom_m`` (metres), as WGS84 (lon, lat)."""
    if geom_m.is_empty:
        return None
    point = shapely.point_on_surface(geom_m)
    return metric.point_to_wgs84(point.x, point.y)


def _check_outside_parent(
    children: list[_Sibling],
    *,
    parent_m: BaseGeometry,
    metric: LocalMetric,
    limits: ValidationLimits,
) -> list[Issue]:
    tolerance_m = limits.containment_tolerance_m
    allowed_m = shapely.buffer(parent_m, tolerance_m)
    shapely.prepare(allowed_m)
    # The prepared 'covers' test settles almost every child without a difference.
    geoms_m = np.array([child.geom_m for child in children], dtype=object)
    covered = shapely.covers(allowed_m, geoms_m) if children else np.array([], dtype=bool)
    issues: list[Issue] = []
    for child, is_covered in zip(children, covered, strict=True):
        if is_covered:
            continue
        outside_m = shapely.difference(child.geom_m, allowed_m)
        area_m2 = float(outside_m.area)
        if area_m2 <= _AREA_NOISE_M2:
            continue
        beyond_m = _max_distance_m(outside_m, target_m=parent_m)
        message = (
            f"{child.label}: {area_m2:,.1f} m² lies outside the parent area, up to "
            f"{beyond_m:,.1f} m beyond its boundary (tolerance {tolerance_m:g} m)"
        )
        issues.append(
            _issue(
                RULE_OUTSIDE_PARENT,
                feature=child.feature,
                message=message,
                location=_location(outside_m, metric=metric),
                measure=round(area_m2, 2),
                unit="m2",
            )
        )
    return issues


def _max_distance_m(geom_m: BaseGeometry, *, target_m: BaseGeometry) -> float:
    """Largest distance from a vertex of ``geom_m`` to ``target_m`` (a Hausdorff-like
    measure of how far a protrusion reaches)."""
    coords = shapely.get_coordinates(geom_m)
    if len(coords) == 0:
        return 0.0
    return float(np.max(shapely.distance(shapely.points(coords), target_m)))


def _check_overlaps(
    siblings: list[_Sibling],
    *,
    new_count: int,
    metric: LocalMetric,
    limits: ValidationLimits,
) -> list[Issue]:
    if new_count == 0:
        return []
    geoms_m = np.array([s.geom_m for s in siblings], dtype=object)
    tree = shapely.STRtree(geoms_m)
    # Query only the new features; each unordered pair once (j > i). Stored siblings
    # have indices >= new_count, so new-vs-stored pairs are all kept, stored-vs-stored
    # (not this import's doing) never appear.
    left, right = tree.query(geoms_m[:new_count], predicate="intersects")
    keep = right > left
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return []
    # Neighbours that only share an edge intersect with zero area: filter by area.
    intersections = shapely.intersection(geoms_m[left], geoms_m[right])
    areas_m2: NDArray[np.float64] = shapely.area(intersections)
    issues: list[Issue] = []
    for k in np.flatnonzero(areas_m2 > limits.overlap_tolerance_m2):
        first, second = siblings[int(left[k])], siblings[int(right[k])]
        area_m2 = float(areas_m2[k])
        message = f"{first.label} and {second.label} overlap by {area_m2:,.1f} m²"
        issues.append(
            _issue(
                RULE_SIBLING_OVERLAP,
                feature=first.feature,
                message=message,
                location=_location(intersections[k], metric=metric),
                measure=round(area_m2, 2),
                unit="m2",
            )
        )
    return issues


def _check_gaps(
    siblings: list[_Sibling],
    *,
    parent_m: BaseGeometry | None,
    metric: LocalMetric,
    limits: ValidationLimits,
) -> list[Issue]:
    if not siblings:
        return []
    union_m = shapely.union_all(
        np.array([s.geom_m for s in siblings], dtype=object), grid_size=_GAP_GRID_M
    )
    if parent_m is not None:
        pieces = list(_polygons(shapely.difference(parent_m, union_m, grid_size=_GAP_GRID_M)))
        where = "inside the parent area is covered by no sibling area"
    else:
        pieces = [Polygon(ring) for part in _polygons(union_m) for ring in part.interiors]
        where = "is enclosed by the sibling areas but covered by none of them"
    gaps = sorted(
        (piece for piece in pieces if piece.area > limits.gap_min_m2),
        key=lambda piece: -piece.area,
    )
    issues: list[Issue] = []
    for gap_m in gaps:
        location = _location(gap_m, metric=metric)
        near = "" if location is None else f" near ({location[0]:.6f}, {location[1]:.6f})"
        issues.append(
            _issue(
                RULE_GAP,
                feature=None,
                severity="warning",
                message=f"a gap of {gap_m.area:,.1f} m²{near} {where}",
                location=location,
                measure=round(float(gap_m.area), 2),
                unit="m2",
            )
        )
    return issues


def _polygons(geom: BaseGeometry) -> Iterable[Polygon]:
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon) and not part.is_empty:
            yield part


# --------------------------------------------------------------------------------------
# Text table for the command line
# --------------------------------------------------------------------------------------

_TABLE_COLUMNS = ("SEVERITY", "RULE", "ROW", "CODE", "MEASURE", "WHERE", "MESSAGE")
_MAX_CELL_WIDTH = 24  # every column but the last (the message is never cut)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: CJK wide/full-width characters count 2,
    combining marks 0."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _clip(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out = ""
    for char in text:
        if display_width(out + char) > width - 1:
            break
        out += char
    return out + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - display_width(text))


def _format_measure(issue: Issue) -> str:
    if issue.measure is None:
        return ""
    if issue.unit is None:
        return f"{issue.measure:,.0f}"
    return f"{issue.measure:,.1f} {issue.unit}"


def _row_cells(issue: Issue) -> list[str]:
    where = "" if issue.location is None else f"{issue.location[0]:.6f},{issue.location[1]:.6f}"
    return [
        issue.severity,
        issue.rule,
        "" if issue.feature is None else str(issue.feature),
        issue.code or "",
        _format_measure(issue),
        where,
        issue.message,
    ]


def _summary(report: ValidationReport) -> str:
    errors, warnings = len(report.errors), len(report.warnings)
    error_word = "error" if errors == 1 else "errors"
    warning_word = "warning" if warnings == 1 else "warnings"
    return f"{errors} {error_word}, {warnings} {warning_word}"


def format_report_table(report: ValidationReport, *, max_rows: int = 50) -> str:
    """A fixed-width text table of the report for the command line, errors first.

    Columns are padded by display width, so Chinese names line up. At most ``max_rows``
    issues are listed; a last line says how many were left out.
    """
    if not report.issues:
        return "No problems found."
    ordered = report.errors + report.warnings
    shown = ordered[: max(0, max_rows)]
    rows = [list(_TABLE_COLUMNS)] + [_row_cells(issue) for issue in shown]
    rows = [[_clip(cell, _MAX_CELL_WIDTH) for cell in row[:-1]] + [row[-1]] for row in rows]
    widths = [max(display_width(row[c]) for row in rows) for c in range(len(_TABLE_COLUMNS) - 1)]
    lines = [_summary(report)]
    for row in rows:
        cells = [_pad(cell, width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    hidden = len(ordered) - len(shown)
    if hidden > 0:
        lines.append(f"… {hidden} more issue(s) not shown")
    return "\n".join(lines)
