"""Reading boundary files (GeoJSON, Shapefile, zipped Shapefile, GeoPackage).

Every failure becomes an ``InvalidInput`` (or ``LimitExceeded``) whose message
names the file and what is wrong with it, so a grid office can fix it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.errors
import shapely
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput, LimitExceeded

SUPPORTED_SUFFIXES = (".geojson", ".json", ".shp", ".zip", ".gpkg")
SHAPEFILE_SIBLINGS = (".shx", ".dbf")
INNER_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json")


@dataclass(frozen=True)
class FileLimits:
    """Caps on what one upload may hold (bytes on disk and once unzipped)."""

    max_bytes: int = 50 * 1024 * 1024
    max_inflated_bytes: int = 200 * 1024 * 1024


@dataclass(frozen=True)
class RawFeature:
    """One feature as read. ``row`` is 1-based, in file order."""

    row: int
    properties: dict[str, Any]
    geometry: BaseGeometry | None


@dataclass(frozen=True)
class FeatureTable:
    """The features of one layer, with the CRS the file declares (if any)."""

    name: str
    features: list[RawFeature]
    fields: list[str]
    declared_crs: str | None = None
    driver: str | None = None
    notes: list[str] = field(default_factory=list)


def read_feature_file(
    path: Path, *, limits: FileLimits = FileLimits(), display_name: str | None = None
) -> FeatureTable:
    """Read the first layer of a boundary file.

    Promises: the file is checked against ``limits`` before it is parsed (a zip
    by its declared inflated size, so a zip bomb is refused unopened); empty
    files, unknown formats, malformed GeoJSON and shapefiles without their
    ``.shx``/``.dbf`` are refused with a message saying so.
    """
    name = display_name or path.name
    _check_size(path, name=name, limits=limits)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInput(
            f"{name}: unsupported file type {suffix or '(no extension)'!r}; "
            "give GeoJSON (.geojson/.json), a Shapefile (.shp with .shx and .dbf, or all in a"
            " .zip) or a GeoPackage (.gpkg)"
        )
    if suffix in (".geojson", ".json"):
        _check_json(path, name=name)
    if suffix == ".shp":
        _check_shapefile_siblings(path, name=name)
    source = _zip_member(path, name=name, limits=limits) if suffix == ".zip" else str(path)
    return _read_layer(source, name=name)


def _check_size(path: Path, *, name: str, limits: FileLimits) -> None:
    if not path.is_file():
        raise InvalidInput(f"{name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput(f"{name}: the file is empty")
    if size > limits.max_bytes:
        raise LimitExceeded(
            f"{name}: {size:,} bytes is over the upload cap of {limits.max_bytes:,} bytes"
        )


def _check_json(path: Path, *, name: str) -> None:
    """Parse once with the json module: its errors give line and column."""
    try:
        document = json.loads(path.read_bytes())
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{name}: GeoJSON must be UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{name}: malformed GeoJSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(document, dict) or document.get("type") not in (
        "FeatureCollection",
        "Feature",
    ):
        raise InvalidInput(f"{name}: GeoJSON must be a FeatureCollection or a Feature")
    if document.get("type") == "FeatureCollection" and not document.get("features"):
        raise InvalidInput(f"{name}: the FeatureCollection has no features")


def _check_shapefile_siblings(path: Path, *, name: str) -> None:
    missing = [s for s in SHAPEFILE_SIBLINGS if not _sibling(path, s).exists()]
    if missing:
        raise InvalidInput(
            f"{name}: a Shapefile needs its {' and '.join(missing)} beside the .shp"
            " (or upload all parts in one .zip)"
        )


def _sibling(path: Path, suffix: str) -> Path:
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return path.with_suffix(suffix)


def _zip_member(path: Path, *, name: str, limits: FileLimits) -> str:
    """The GDAL path of the one layer inside a zip, after checking its inflated size."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise InvalidInput(f"{name}: not a readable zip archive") from None
    inflated = sum(member.file_size for member in members)
    if inflated > limits.max_inflated_bytes:
        raise LimitExceeded(
            f"{name}: the zip inflates to {inflated:,} bytes, over the cap of"
            f" {limits.max_inflated_bytes:,} bytes"
        )
    layers = [
        m.filename
        for m in members
        if Path(m.filename).suffix.lower() in INNER_SUFFIXES
        and not m.filename.startswith("__MACOSX")
    ]
    if not layers:
        raise InvalidInput(f"{name}: the zip holds no .shp, .gpkg or .geojson file")
    if len(layers) > 1:
        raise InvalidInput(
            f"{name}: the zip holds {len(layers)} layers ({', '.join(layers)}); give one"
        )
    inner = layers[0]
    if inner.lower().endswith(".shp"):
        stems = {m.filename.lower() for m in members}
        missing = [s for s in SHAPEFILE_SIBLINGS if inner[:-4].lower() + s not in stems]
        if missing:
            raise InvalidInput(f"{name}: {inner} in the zip lacks its {' and '.join(missing)}")
    return f"/vsizip/{path}/{inner}"


def _read_layer(source: str, *, name: str) -> FeatureTable:
    try:
        meta, _fids, wkb, field_data = pyogrio.raw.read(source)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InvalidInput(f"{name}: cannot be read as a boundary layer: {exc}") from None
    fields = [str(f) for f in meta["fields"]]
    geometries = shapely.from_wkb(wkb) if wkb is not None else np.full(len(field_data[0]), None)
    columns = [_column_values(values) for values in field_data]
    features = [
        RawFeature(
            row=index + 1,
            properties={f: column[index] for f, column in zip(fields, columns, strict=True)},
            geometry=geometry,
        )
        for index, geometry in enumerate(geometries)
    ]
    if not features:
        raise InvalidInput(f"{name}: the layer has no features")
    return FeatureTable(
        name=name,
        features=features,
        fields=fields,
        declared_crs=meta.get("crs"),
        driver=meta.get("driver"),
    )


def _column_values(values: Any) -> list[Any]:
    """numpy column → Python values (NaN and masked become None)."""
    out: list[Any] = []
    for value in values.tolist():
        if isinstance(value, float) and value != value:  # NaN from a missing number
            out.append(None)
        else:
            out.append(value)
    return out
