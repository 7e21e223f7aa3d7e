"""Import of the standard address registry (标准地址库): one building per row.

The file applies whole or not at all: every rejected row is reported with its
reasons. A building code already stored is updated in place; households
located at a building that moved follow it and are reassigned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.assign import assign_households
from geo.address_registry import AddressRejection, AddressRow, rows_from_records
from geo.crs import Crs, lonlat_to_wgs84
from geo.errors import InvalidInput
from geo.io import FileLimits, read_feature_file
from geo.tabular import read_table


@dataclass
class AddressImportReport:
    file: str
    crs: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    households_moved: int = 0
    dry_run: bool = False
    applied: bool = False
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        outcome = (
            f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged buildings;"
            f" {self.households_moved} households followed their building"
            if self.applied
            else "nothing written"
        )
        return f"{self.file}: {self.rows} row(s), CRS {self.crs}, {len(self.rejected)} rejected; {outcome}"


class AddressImportRejected(InvalidInput):
    title = "Address registry rejected"

    def __init__(self, report: AddressImportReport) -> None:
        first = report.rejected[0]
        super().__init__(
            f"{report.file}: {len(report.rejected)} row(s) rejected, nothing written;"
            f" first: row {first['row']}: {'; '.join(first['reasons'])}",
            extra={"report": report.as_dict()},
        )
        self.report = report


def read_address_rows(
    path: Path, *, display_name: str | None = None, limits: FileLimits = FileLimits()
) -> tuple[str, list[AddressRow], list[AddressRejection]]:
    """Rows of a CSV/XLSX registry, or of GeoJSON points (their geometry gives lon/lat)."""
    name = display_name or path.name
    if path.suffix.lower() in (".geojson", ".json"):
        table = read_feature_file(path, limits=limits, display_name=name)
        headers = [*table.fields, "lon", "lat"]
        records = []
        for feature in table.features:
            point = feature.geometry
            lon, lat = (point.x, point.y) if isinstance(point, shapely.Point) else (None, None)
            records.append({**feature.properties, "lon": lon, "lat": lat})
        good, bad = rows_from_records(
            records, headers=headers, row_numbers=[f.row for f in table.features]
        )
        return name, good, bad
    sheet = read_table(path, display_name=name)
    records = [dict(zip(sheet.headers, row, strict=False)) for row in sheet.rows]
    good, bad = rows_from_records(records, headers=sheet.headers, row_numbers=sheet.row_numbers)
    return name, good, bad


def import_addresses(
    session: Session,
    *,
    path: Path,
    crs: Crs,
    dry_run: bool = False,
    display_name: str | None = None,
) -> AddressImportReport:
    """Check and write a registry file in the caller's transaction."""
    name, good, bad = read_address_rows(path, display_name=display_name)
    report = AddressImportReport(
        file=name, crs=crs.label, rows=len(good) + len(bad), dry_run=dry_run
    )
    report.rejected = [{"row": r.row, "reasons": list(r.reasons)} for r in bad]
    if not good and not bad:
        raise InvalidInput(f"{name}: no rows")
    _stage(session, rows=good, crs=crs)
    report.rejected += _outside_every_county(session)
    report.rejected += _duplicate_codes(good)
    if report.rejected:
        report.rejected.sort(key=lambda r: r["row"])
        raise AddressImportRejected(report)
    if not dry_run:
        _write(session, report=report)
        report.applied = True
    return report


def _stage(session: Session, *, rows: list[AddressRow], crs: Crs) -> None:
    lon, lat = lonlat_to_wgs84(
        np.array([r.lon for r in rows]), np.array([r.lat for r in rows]), crs=crs
    )
    # Dropped first: two imports in one transaction would meet the first one's table.
    session.execute(text("DROP TABLE IF EXISTS address_stage"))
    session.execute(
        text(
            "CREATE TEMP TABLE address_stage (row int, code text, address text, county text, township text,"
            " community text, road text, house_number text, estate text, building_no text,"
            " village_group text, lon float8, lat float8, county_code text) ON COMMIT DROP"
        )
    )
    if not rows:
        return
    lon, lat = lonlat_to_wgs84(
        np.array([r.lon for r in rows]), np.array([r.lat for r in rows]), crs=crs
    )
    session.execute(
        text(
            "INSERT INTO address_stage (row, code, address, county, township, community, road, house_number,"
            " estate, building_no, village_group, lon, lat) VALUES (:row, :code, :address, :county, :township,"
            " :community, :road, :house_number, :estate, :building_no, :village_group, :lon, :lat)"
        ),
        [
            {
                "row": r.row,
                "code": r.code,
                "address": r.address,
                **r.parts,
                "lon": float(x),
                "lat": float(y),
            }
            for r, x, y in zip(rows, lon.tolist(), lat.tolist(), strict=True)
        ],
    )
    # The tenant key: the county whose boundary covers the point.
    session.execute(
        text(
            "UPDATE address_stage s SET county_code = (SELECT a.code FROM area a WHERE a.level = 'county'"
            " AND a.valid_to IS NULL AND ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326))"
            " ORDER BY a.code LIMIT 1)"
        )
    )


def _outside_every_county(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        text("SELECT row, lon, lat FROM address_stage WHERE county_code IS NULL ORDER BY row")
    )
    return [
        {
            "row": row,
            "reasons": [f"point ({lon:.6f}, {lat:.6f}) lies in no county boundary held by Wangge"],
        }
        for row, lon, lat in rows
    ]


def _duplicate_codes(rows: list[AddressRow]) -> list[dict[str, Any]]:
    first: dict[str, int] = {}
    out = []
    for r in rows:
        if r.code in first:
            out.append({"row": r.row, "reasons": [f"code: {r.code} repeats row {first[r.code]}"]})
        else:
            first[r.code] = r.row
    return out


def _write(session: Session, *, report: AddressImportReport) -> None:
    result = session.execute(
        text(
            """
            INSERT INTO building AS b (county_code, code, address, county, township, community, road,
                                       house_number, estate, building_no, village_group, source, geom)
            SELECT county_code, code, address, county, township, community, road, house_number, estate,
                   building_no, village_group, :source, ST_SetSRID(ST_MakePoint(lon, lat), 4326)
            FROM address_stage
            ON CONFLICT (code) DO UPDATE SET
                county_code = excluded.county_code, address = excluded.address, county = excluded.county,
                township = excluded.township, community = excluded.community, road = excluded.road,
                house_number = excluded.house_number, estate = excluded.estate,
                building_no = excluded.building_no, village_group = excluded.village_group,
                source = excluded.source, geom = excluded.geom, updated_at = now()
            WHERE (b.county_code, b.address, b.county, b.township, b.community, b.road, b.house_number,
                   b.estate, b.building_no, b.village_group, ST_AsEWKB(b.geom))
               IS DISTINCT FROM
                  (excluded.county_code, excluded.address, excluded.county, excluded.township,
                   excluded.community, excluded.road, excluded.house_number, excluded.estate,
                   excluded.building_no, excluded.village_group, ST_AsEWKB(excluded.geom))
            RETURNING (xmax = 0) AS inserted
            """
        ),
        {"source": report.file},
    ).all()
    report.created = sum(1 for (inserted,) in result if inserted)
    report.updated = len(result) - report.created
    report.unchanged = report.rows - len(result)
    moved = session.execute(
        text(
            "UPDATE household h SET geom = b.geom FROM building b, address_stage s"
            " WHERE s.code = b.code AND h.building_id = b.id AND h.geocode_level = 'building'"
            " AND NOT ST_Equals(h.geom, b.geom) RETURNING h.id, h.county_code"
        )
    ).all()
    report.households_moved = len(moved)
    for county in {county for _, county in moved}:
        ids = [hid for hid, c in moved if c == county]
        assign_households(session.connection(), county_code=county, household_ids=ids)
