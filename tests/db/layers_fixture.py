"""A hand-built county small enough to count on one's fingers, for the layer
tests: one township, community and grid; micro-grids A and B side by side;
households, residents, a screening round with visits, cases, quarantines,
temperature checks and checkpoint passages on known days around DAY."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from db.assign import assign_households

COUNTY = "990101"
TOWNSHIP, COMMUNITY, GRID = "990101001", "990101001001", "990101001001001"
MG_A, MG_B = GRID + "01", GRID + "02"
FIRST_DAY = dt.date(2020, 1, 1)
DAY = dt.date(2020, 2, 6)
CHANGE_DAY = dt.date(2020, 2, 5)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
CELL = 0.01  # degrees


def box_wkt(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A Beijing-time moment."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


@dataclass
class Fixture:
    households: dict[str, int] = field(default_factory=dict)  # "A1" → id
    residents: dict[str, int] = field(default_factory=dict)  # "A1a" → id
    round_id: int = 0


def add_area(
    conn: Connection, *, code: str, level: str, parent: str | None, wkt: str,
    valid_from: dt.date = FIRST_DAY,
) -> None:  # fmt: skip
    conn.execute(
        text(
            "INSERT INTO area (code, name, level, parent_code, county_code, valid_from, geom)"
            " VALUES (:code, :name, :level, :parent, :county, :day, ST_GeomFromText(:wkt, 4326))"
        ),
        {"code": code, "name": f"{level} {code}", "level": level, "parent": parent,
         "county": COUNTY, "day": valid_from, "wkt": wkt},
    )  # fmt: skip


def redraw(conn: Connection, *, code: str, wkt: str, day: dt.date) -> None:
    """A new version of ``code`` from ``day``, the old one closed, as an import does."""
    conn.execute(
        text("UPDATE area SET valid_to = :day WHERE code = :code AND valid_to IS NULL"),
        {"code": code, "day": day},
    )
    level = "microgrid"
    add_area(conn, code=code, level=level, parent=GRID, wkt=wkt, valid_from=day)


def build(conn: Connection) -> Fixture:
    """The county, its people and a week of field work (see the module docstring).

    Micro-grid A is x ∈ [0, 0.01], B is x ∈ [0.01, 0.02] (y ∈ [0, 0.01]).
    """
    fx = Fixture()
    whole = box_wkt(0, 0, 2 * CELL, CELL)
    add_area(conn, code=COUNTY, level="county", parent=None, wkt=whole)
    add_area(conn, code=TOWNSHIP, level="township", parent=COUNTY, wkt=whole)
    add_area(conn, code=COMMUNITY, level="community", parent=TOWNSHIP, wkt=whole)
    add_area(conn, code=GRID, level="grid", parent=COMMUNITY, wkt=whole)
    add_area(conn, code=MG_A, level="microgrid", parent=GRID, wkt=box_wkt(0, 0, CELL, CELL))
    add_area(conn, code=MG_B, level="microgrid", parent=GRID, wkt=box_wkt(CELL, 0, 2 * CELL, CELL))
    points = {"A1": (0.002, 0.005), "A2": (0.004, 0.005), "A3": (0.009, 0.005),
              "B1": (0.013, 0.005), "B2": (0.017, 0.005), "U": None}  # fmt: skip
    for name, point in points.items():
        fx.households[name] = _household(conn, point)
        for person in ("a", "b"):
            fx.residents[name + person] = _resident(conn, household_id=fx.households[name])
    assign_households(conn, county_code=COUNTY)

    fx.round_id = int(
        conn.execute(
            text(
                "INSERT INTO screening_round (county_code, area_code, name, start_date, end_date)"
                " VALUES (:c, :c, '第一轮', '2020-02-01', '2020-02-10') RETURNING id"
            ),
            {"c": COUNTY},
        ).scalar_one()
    )
    d = dt.date
    for household, result, moment in (
        ("A1", "complete", at(d(2020, 2, 3), 10)),
        ("A2", "nobody_home", at(d(2020, 2, 4), 15)),
        ("A3", "complete", at(d(2020, 2, 7), 1, 30)),  # 2020-02-06 17:30 UTC: the 7th in Beijing
        ("B1", "partial", at(d(2020, 2, 2), 9)),
        ("B1", "complete", at(d(2020, 2, 5), 9)),
        ("B2", "refused", at(d(2020, 2, 7), 11)),
    ):
        conn.execute(
            text(
                "INSERT INTO visit (county_code, round_id, household_id, result, visited_at)"
                " VALUES (:c, :r, :h, :res, :t)"
            ),
            {"c": COUNTY, "r": fx.round_id, "h": fx.households[household], "res": result, "t": moment},
        )  # fmt: skip

    # Cases: A1a confirmed at a hospital elsewhere, recovered on the 5th; B1a
    # suspected on the 4th, ruled out on the 6th; a case known only by household B2.
    _case(conn, resident=fx.residents["A1a"], household=None,
          history=[("confirmed", d(2020, 2, 3)), ("recovered", d(2020, 2, 5))],
          reported_by="外镇人民医院")  # fmt: skip
    _case(conn, resident=fx.residents["B1a"], household=None,
          history=[("suspected", d(2020, 2, 4)), ("ruled_out", d(2020, 2, 6))])  # fmt: skip
    _case(conn, resident=None, household=fx.households["B2"],
          history=[("confirmed", d(2020, 2, 6))])  # fmt: skip

    # Quarantines: A1a since the 1st; B1a released on the 3rd; B2a from the 6th.
    for resident, start, released in (("A1a", d(2020, 2, 1), None),
                                      ("B1a", d(2020, 1, 20), d(2020, 2, 3)),
                                      ("B2a", d(2020, 2, 6), None)):  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO quarantine (county_code, resident_id, kind, start_date, planned_end,"
                " released_on) VALUES (:c, :r, 'home', :s, :e, :rel)"
            ),
            {"c": COUNTY, "r": fx.residents[resident], "s": start,
             "e": start + dt.timedelta(days=14), "rel": released},
        )  # fmt: skip
    # Temperatures on DAY: A1a 37.5 (fever) at 08:00 Beijing = 00:00 UTC; B1b 36.5;
    # B2a checked only late on the 5th (Beijing), so overdue on the 6th.
    for resident, moment, celsius in (("A1a", at(DAY, 8), 37.5), ("B1b", at(DAY, 9), 36.5),
                                      ("B2a", at(d(2020, 2, 5), 23, 50), 36.6)):  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO temperature_check (county_code, resident_id, checked_at, temperature_c)"
                " VALUES (:c, :r, :t, :v)"
            ),
            {"c": COUNTY, "r": fx.residents[resident], "t": moment, "v": celsius},
        )
    checkpoint = int(
        conn.execute(
            text(
                "INSERT INTO checkpoint (county_code, name, kind, geom) VALUES"
                " (:c, '高速出口', 'highway_exit', ST_SetSRID(ST_MakePoint(0.019, 0.001), 4326))"
                " RETURNING id"
            ),
            {"c": COUNTY},
        ).scalar_one()
    )
    for resident, plate, celsius, code, home, moment in (
        ("A2a", None, 37.6, "green", MG_A, at(DAY, 10)),
        (None, "粤W12345", 36.5, "yellow", None, at(DAY, 11)),
        ("B1a", None, 36.4, "green", MG_B, at(DAY, 12)),
        ("B1b", None, 38.0, "green", MG_B, at(d(2020, 2, 5), 12)),
    ):
        conn.execute(
            text(
                "INSERT INTO passage (county_code, checkpoint_id, passed_at, resident_id, plate,"
                " temperature_c, health_code, home_microgrid_code)"
                " VALUES (:c, :k, :t, :r, :plate, :v, :code, :home)"
            ),
            {"c": COUNTY, "k": checkpoint, "t": moment,
             "r": fx.residents[resident] if resident else None, "plate": plate, "v": celsius,
             "code": code, "home": home},
        )  # fmt: skip
    return fx


def _household(conn: Connection, point: tuple[float, float] | None) -> int:
    geom = "NULL" if point is None else "ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
    x, y = point or (None, None)
    return int(
        conn.execute(
            text(f"INSERT INTO household (county_code, geom) VALUES (:c, {geom}) RETURNING id"),
            {"c": COUNTY, "x": x, "y": y},
        ).scalar_one()
    )


def _resident(conn: Connection, *, household_id: int) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO resident (county_code, household_id, name, category)"
                " VALUES (:c, :h, '测试', 'local_permanent') RETURNING id"
            ),
            {"c": COUNTY, "h": household_id},
        ).scalar_one()
    )


def _case(
    conn: Connection, *, resident: int | None, household: int | None,
    history: list[tuple[str, dt.date]], reported_by: str | None = None,
) -> None:  # fmt: skip
    case_id = conn.execute(
        text(
            "INSERT INTO case_report (county_code, resident_id, household_id, status, reported_on,"
            " reported_by) VALUES (:c, :r, :h, :s, :d, :by) RETURNING id"
        ),
        {"c": COUNTY, "r": resident, "h": household, "s": history[-1][0], "d": history[0][1],
         "by": reported_by},
    ).scalar_one()  # fmt: skip
    for status, day in history:
        conn.execute(
            text(
                "INSERT INTO case_status_change (case_id, status, effective_on)"
                " VALUES (:id, :s, :d)"
            ),
            {"id": case_id, "s": status, "d": day},
        )
