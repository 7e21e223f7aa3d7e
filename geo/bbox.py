"""The area of a lon/lat box, in km² on the sphere — never in degrees².

A degree of longitude shrinks with the cosine of the latitude, so a box's
size in degrees² says little; the cap on query boxes (``max_bbox_km2``) is
checked against the area between the two meridians and the two parallels on
the sphere of WGS84's authalic radius (the sphere of equal surface), which
is within 0.5 % of the ellipsoid's area at China's latitudes.
"""

from __future__ import annotations

import math

from geo.errors import InvalidInput

AUTHALIC_RADIUS_KM = 6371.0072  # WGS84's authalic (equal-area) sphere


def box_area_km2(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> float:
    """Area in km² of the box between meridians ``min_lon``, ``max_lon`` and
    parallels ``min_lat``, ``max_lat`` (WGS84 degrees): R² · Δλ · (sin φ₂ − sin φ₁)."""
    width_rad = math.radians(abs(max_lon - min_lon))
    band = abs(math.sin(math.radians(max_lat)) - math.sin(math.radians(min_lat)))
    return AUTHALIC_RADIUS_KM**2 * width_rad * band


def require_box_area(
    min_lon: float, min_lat: float, max_lon: float, max_lat: float, *, max_km2: float
) -> None:
    """``InvalidInput`` naming the cap when the box covers more than ``max_km2``."""
    area_km2 = box_area_km2(min_lon, min_lat, max_lon, max_lat)
    if area_km2 > max_km2:
        raise InvalidInput(
            f"bbox covers {area_km2:,.0f} km², above the cap of {max_km2:,.0f} km²"
            " (max_bbox_km2): ask for a smaller box"
        )
