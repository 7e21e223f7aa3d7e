"""GeoJSON (RFC 7946) output of shapely geometries."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from geo.crs import Crs, from_wgs84

DECIMALS = 6  # about 0.1 m: finer than any boundary we hold, coarser is lossy


def geometry_to_geojson(geom_4326: BaseGeometry, *, crs: Crs | None = None) -> dict[str, Any]:
    """A GeoJSON geometry dict, lon/lat, rounded to 6 decimals.

    With ``crs`` (for example GCJ-02 for a Gaode basemap) the coordinates are
    converted from WGS84 first; RFC 7946 readers assume WGS84 otherwise.
    """
    geom = geom_4326 if crs is None or crs.is_wgs84 else from_wgs84(geom_4326, crs=crs)
    rounded = shapely.transform(geom, lambda coords: np.round(coords, DECIMALS))
    return dict(mapping(rounded))


def feature(
    *, geometry: dict[str, Any] | None, properties: dict[str, Any], feature_id: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Feature", "geometry": geometry, "properties": properties}
    if feature_id is not None:
        out["id"] = feature_id
    return out
