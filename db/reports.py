"""The daily report's figures: every layer it shows, at every level under an area.

Each figure is the layers' own (``db.layers.compute_layer``) for the same
area, date and round, so the report says what the map says; a parent's row
is therefore the sum of its children's (the layers sum up the hierarchy).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from db.areas import get_area
from db.layers import AreaFigure, compute_layer, default_level, default_round
from db.models import AREA_LEVELS
from db.visits import RoundRecord, get_round
from geo.daily_report import DailyReport, ReportRow

# report column → the layer whose numerator it is
REPORT_LAYERS: dict[str, str] = {
    "complete": "coverage",
    "incomplete": "incomplete",
    "unvisited": "unvisited",
    "quarantined": "quarantine",
    "overdue_checks": "quarantine_overdue",
    "fever": "fever",
    "active_cases": "cases",
    "flagged_passages": "checkpoint_flags",
}
ALL_AREAS_NAME = "全部辖区"


def report_levels(session: Session, *, within: str | None, as_of: dt.date) -> tuple[str, ...]:
    """The levels a report on ``within`` lists: from the one below it down to micro-grids."""
    first = default_level(session, within=within, as_of=as_of)
    if within is not None and first == get_area(session, code=within, as_of=as_of).level:
        return ()  # a micro-grid has no level below it
    return AREA_LEVELS[AREA_LEVELS.index(first) :]


def report_round(
    session: Session, *, within: str | None, as_of: dt.date, round_id: int | None
) -> RoundRecord | None:
    if round_id is not None:
        return get_round(session, round_id=round_id)
    return default_round(session, within=within, as_of=as_of)


def daily_report(
    session: Session,
    *,
    within: str | None,
    as_of: dt.date,
    round_id: int | None = None,
    max_depth: int | None = None,
) -> DailyReport:
    """The report on ``within`` (None: every area) on ``as_of``, for the round
    asked for or the one the map shows by default; ``max_depth`` levels only
    when given (1: the areas just below ``within``)."""
    name = ALL_AREAS_NAME if within is None else get_area(session, code=within, as_of=as_of).name
    round_ref = report_round(session, within=within, as_of=as_of, round_id=round_id)
    levels = report_levels(session, within=within, as_of=as_of)[:max_depth]
    rid = round_ref.id if round_ref else None
    by_level: dict[str, list[ReportRow]] = {}
    unlocated = 0
    for depth, level in enumerate(levels):
        figures: dict[str, dict[str, AreaFigure]] = {}
        for column, layer in REPORT_LAYERS.items():
            result = compute_layer(
                session, layer=layer, as_of=as_of, level=level, within=within, round_id=rid
            )
            figures[column] = {f.code: f for f in result.figures}
            unlocated = result.unlocated_households
        coverage = figures["complete"]
        by_level[level] = [
            ReportRow(
                code=code, name=f.name, level=f.level, parent_code=f.parent_code, depth=depth,
                households=f.households, round_households=f.denominator,
                **{column: figures[column][code].numerator for column in REPORT_LAYERS},
            )
            for code, f in sorted(coverage.items())
        ]  # fmt: skip
    rows = depth_first(by_level, levels=levels)
    top = by_level.get(levels[0], []) if levels else []
    total = ReportRow(
        code=within or "", name=name, level="total", parent_code=None, depth=0,
        households=sum(r.households for r in top),
        round_households=sum(r.round_households for r in top),
        **{column: sum(getattr(r, column) for r in top) for column in REPORT_LAYERS},
    )  # fmt: skip
    return DailyReport(
        within=within, within_name=name, as_of=as_of,
        round_name=round_ref.name if round_ref else None,
        round_dates=(round_ref.start_date, round_ref.end_date) if round_ref else None,
        rows=tuple(rows), total=total, unlocated_households=unlocated,
    )  # fmt: skip


def depth_first(
    by_level: dict[str, list[ReportRow]], *, levels: tuple[str, ...]
) -> list[ReportRow]:
    """Rows in the order a report reads them: each area followed by its
    children (by code); a row whose parent is not listed goes last."""
    children: dict[str | None, list[ReportRow]] = {}
    for level in levels[1:]:
        for row in by_level.get(level, []):
            children.setdefault(row.parent_code, []).append(row)
    out: list[ReportRow] = []

    def walk(row: ReportRow) -> None:
        out.append(row)
        for child in children.pop(row.code, []):
            walk(child)

    for row in by_level.get(levels[0], []) if levels else []:
        walk(row)
    for orphans in children.values():
        out.extend(orphans)
    return out
