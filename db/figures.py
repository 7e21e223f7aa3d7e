"""Key figures of an area for the wall map: each on a day and the day before.

Every figure is a total of a layer (``db.layers.compute_layer``) for the area
itself at its own level, so what the wall map's panel shows equals what the
layers show. With no area (an admin's whole map) the figures are the totals
over the areas at the top level that has any.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.areas import IN_FORCE
from db.layers import LayerResult, compute_layer
from db.models import AREA_LEVELS
from db.visits import RoundRecord
from geo.errors import NotFound


@dataclass(frozen=True)
class FigureSpec:
    """A key figure: which layer it comes from and which of its totals
    (``households``, ``numerator``, ``denominator`` or ``value``)."""

    id: str
    label_zh: str
    label_en: str
    layer: str
    total: str
    unit: str = ""


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("households", "户数", "Households", "coverage", "households"),
    FigureSpec("visited", "已走访户", "Visited", "visited", "numerator"),
    FigureSpec("coverage", "排查覆盖率", "Coverage", "coverage", "value", "%"),
    FigureSpec("incomplete", "未完成户", "Incomplete", "incomplete", "numerator"),
    FigureSpec("quarantine", "隔离人员", "Under quarantine", "quarantine", "numerator"),
    FigureSpec("quarantine_overdue", "漏测体温", "Overdue checks", "quarantine_overdue", "numerator"),
    FigureSpec("cases", "现有病例", "Active cases", "cases", "numerator"),
    FigureSpec("checkpoint_flags", "卡口预警(今日)", "Flagged passages today", "checkpoint_flags", "numerator"),
)  # fmt: skip


@dataclass(frozen=True)
class Totals:
    households: int
    numerator: int
    denominator: int
    value: float | None


@dataclass(frozen=True)
class KeyFigure:
    spec: FigureSpec
    value: float | None
    previous: float | None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return round(self.value - self.previous, 2)


@dataclass(frozen=True)
class AreaRef:
    code: str
    name: str
    level: str


@dataclass(frozen=True)
class KeyFigures:
    area: AreaRef | None  # None: the whole map
    level: str  # the level the totals were taken at
    as_of: dt.date
    previous: dt.date
    round: RoundRecord | None
    figures: tuple[KeyFigure, ...]


def area_ref(session: Session, *, code: str, as_of: dt.date) -> AreaRef:
    row = session.execute(
        text(f"SELECT a.code, a.name, a.level FROM area a WHERE a.code = :code AND {IN_FORCE}"),
        {"code": code, "as_of": as_of},
    ).first()
    if row is None:
        raise NotFound(f"no area with code {code!r} on {as_of.isoformat()}")
    return AreaRef(code=str(row[0]), name=str(row[1]), level=str(row[2]))


def top_level(session: Session, *, as_of: dt.date) -> str:
    """The highest level that has an area in force on ``as_of`` (``township`` if none)."""
    levels = {
        str(r[0])
        for r in session.execute(
            text(f"SELECT DISTINCT a.level FROM area a WHERE {IN_FORCE}"), {"as_of": as_of}
        ).all()
    }
    return next((level for level in AREA_LEVELS if level in levels), "township")


def layer_totals(result: LayerResult) -> Totals:
    """The same totals GET /api/layers/{layer} reports for the collection."""
    numerator = sum(f.numerator for f in result.figures)
    denominator = sum(f.denominator for f in result.figures)
    if result.spec.value == "rate":
        value = round(100.0 * numerator / denominator, 2) if denominator else None
    else:
        value = float(numerator)
    return Totals(
        households=sum(f.households for f in result.figures),
        numerator=numerator,
        denominator=denominator,
        value=value,
    )


def _figure_value(totals: dict[str, Totals], spec: FigureSpec) -> float | None:
    if spec.layer == "visited":
        # Visited = complete + visited but incomplete (coverage's and incomplete's numerators).
        if totals["coverage"].denominator == 0:
            return None
        return float(totals["coverage"].numerator + totals["incomplete"].numerator)
    chosen = totals[spec.layer]
    if spec.total == "value":
        return chosen.value
    return float(getattr(chosen, spec.total))


def _day_totals(
    session: Session, *, as_of: dt.date, level: str, within: str | None, round_id: int | None
) -> tuple[dict[str, Totals], RoundRecord | None]:
    layers = sorted({s.layer for s in FIGURES if s.layer != "visited"} | {"coverage", "incomplete"})
    totals: dict[str, Totals] = {}
    round_ref: RoundRecord | None = None
    for layer in layers:
        result = compute_layer(
            session, layer=layer, as_of=as_of, level=level, within=within, round_id=round_id
        )
        totals[layer] = layer_totals(result)
        if layer == "coverage":
            round_ref = result.round
    return totals, round_ref


def key_figures(
    session: Session, *, within: str | None, as_of: dt.date, round_id: int | None = None
) -> KeyFigures:
    """The key figures of ``within`` (None: the whole map) on ``as_of`` and the
    day before, each a layer's total for the area at its own level."""
    area = area_ref(session, code=within, as_of=as_of) if within is not None else None
    level = area.level if area is not None else top_level(session, as_of=as_of)
    previous_day = as_of - dt.timedelta(days=1)
    today, round_ref = _day_totals(
        session, as_of=as_of, level=level, within=within, round_id=round_id
    )
    try:
        before: dict[str, Totals] | None
        before, _ = _day_totals(
            session, as_of=previous_day, level=level, within=within, round_id=round_id
        )
    except NotFound:  # the area did not exist yet the day before
        before = None
    figures = tuple(
        KeyFigure(
            spec=s,
            value=_figure_value(today, s),
            previous=None if before is None else _figure_value(before, s),
        )
        for s in FIGURES
    )
    return KeyFigures(
        area=area, level=level, as_of=as_of, previous=previous_day, round=round_ref,
        figures=figures,
    )  # fmt: skip
