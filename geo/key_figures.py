"""Key figures of an area for the wall map: what each one is and how it
follows from the layers' totals.

Every figure is a total of a layer (``totals`` of GET /api/layers/{layer}
under the area, at the level below it), so what the wall map's panel shows
equals what the layers show; a parent's totals equal the sum of its
children's, so they are the area's own. The totals themselves come from the
layer cache (``api.routes.figures``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
    better: str = ""  # "up" or "down": which change is good news ("" neither)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("households", "户数", "Households", "coverage", "households"),
    FigureSpec("visited", "已走访户", "Visited", "visited", "numerator", better="up"),
    FigureSpec("coverage", "排查覆盖率", "Coverage", "coverage", "value", "%", better="up"),
    FigureSpec("incomplete", "未完成户", "Incomplete", "incomplete", "numerator", better="down"),
    FigureSpec("quarantine", "隔离人员", "Under quarantine", "quarantine", "numerator"),
    FigureSpec("quarantine_overdue", "漏测体温", "Overdue checks", "quarantine_overdue", "numerator", better="down"),
    FigureSpec("cases", "现有病例", "Active cases", "cases", "numerator", better="down"),
    FigureSpec("checkpoint_flags", "卡口预警(今日)", "Flagged passages today", "checkpoint_flags", "numerator", better="down"),
)  # fmt: skip

# "Visited" is no layer of its own: complete + visited but incomplete.
FIGURE_LAYERS: tuple[str, ...] = tuple(
    sorted({s.layer for s in FIGURES if s.layer != "visited"} | {"coverage", "incomplete"})
)

Totals = Mapping[str, Any]  # a layer collection's "totals" member


@dataclass(frozen=True)
class KeyFigure:
    spec: FigureSpec
    value: float | None
    previous: float | None  # the day before; None when the area did not exist then

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return round(self.value - self.previous, 2)


def figure_value(totals: Mapping[str, Totals], spec: FigureSpec) -> float | None:
    """The figure from the layers' totals (keyed by layer id)."""
    if spec.layer == "visited":
        if totals["coverage"]["denominator"] == 0:
            return None
        return float(totals["coverage"]["numerator"] + totals["incomplete"]["numerator"])
    chosen = totals[spec.layer][spec.total]
    return None if chosen is None else float(chosen)


def key_figures(
    *, today: Mapping[str, Totals], before: Mapping[str, Totals] | None
) -> tuple[KeyFigure, ...]:
    """Every key figure on a day, beside the day before (None: no area then)."""
    return tuple(
        KeyFigure(
            spec=s,
            value=figure_value(today, s),
            previous=None if before is None else figure_value(before, s),
        )
        for s in FIGURES
    )
