"""Choropleth classification: values → classes → colours, and the legend.

Four methods:

* ``quantiles`` — about the same number of areas per class (mapclassify.Quantiles);
* ``equal_interval`` — classes of equal width between min and max
  (mapclassify.EqualInterval);
* ``natural_breaks`` — Jenks' optimal breaks (mapclassify.FisherJenks: the exact
  optimum, deterministic, unlike the k-means ``NaturalBreaks``);
* ``fixed`` — thresholds the caller gives (coverage: 60, 80, 95 %).

A class holds the values between its bounds. Data-driven classes are closed
on the right, as mapclassify makes them (``lower < v <= upper``; the first
also holds its minimum); fixed classes are closed on the left, as a grid
office reads "60–80 %" (``lower <= v < upper``): 80.0 % is in 80–95, not in
60–80. The legend says which (``closed``). Areas without a value (no
households, outside the round) get the "no data" class, never a colour of
the scale. Duplicate breaks (many equal values) merge classes rather than
leave empty ones.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import mapclassify
import numpy as np

from geo.errors import InvalidInput

METHODS: tuple[str, ...] = ("quantiles", "equal_interval", "natural_breaks", "fixed")
MIN_CLASSES = 2
MAX_CLASSES = 9
NO_DATA_COLOUR = "#cccccc"

# ColorBrewer 2.0 sequences (Cynthia Brewer, Apache-2.0 licence), 9 classes;
# fewer classes sample them evenly. RdYlGn4 is ColorBrewer's own 4-class scheme,
# the coverage default.
PALETTES: dict[str, tuple[str, ...]] = {
    "YlOrRd": ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c",
               "#fc4e2a", "#e31a1c", "#bd0026", "#800026"),
    "RdYlGn": ("#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf",
               "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850"),
    "Purples": ("#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8",
                "#807dba", "#6a51a3", "#54278f", "#3f007d"),
    "OrRd": ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59",
             "#ef6548", "#d7301f", "#b30000", "#7f0000"),
}  # fmt: skip
RDYLGN_4: tuple[str, ...] = ("#d7191c", "#fdae61", "#a6d96a", "#1a9641")


@dataclass(frozen=True)
class LegendClass:
    """One class of a legend: its bounds, label, colour and how many areas fell in it."""

    lower: float
    upper: float
    label: str
    colour: str
    count: int


@dataclass(frozen=True)
class Legend:
    method: str
    closed: str  # "left": lower <= v < upper; "right": lower < v <= upper
    breaks: tuple[float, ...]  # the inner thresholds, ascending
    classes: tuple[LegendClass, ...]
    no_data: LegendClass
    unit: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Classified:
    """Per input value its class index (None: no data) and colour, and the legend."""

    classes: tuple[int | None, ...]
    colours: tuple[str, ...]
    legend: Legend


def parse_breaks(text_value: str) -> tuple[float, ...]:
    """``"60,80,95"`` → (60.0, 80.0, 95.0); strictly ascending, finite, else InvalidInput."""
    try:
        values = tuple(float(part) for part in text_value.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"breaks {text_value!r}: give numbers separated by commas") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise InvalidInput(f"breaks {text_value!r}: give finite numbers separated by commas")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise InvalidInput(f"breaks {text_value!r}: thresholds must be strictly ascending")
    if len(values) + 1 > MAX_CLASSES:
        raise InvalidInput(f"breaks {text_value!r}: at most {MAX_CLASSES - 1} thresholds")
    return values


def palette_colours(palette: str, *, n: int, reverse: bool = False) -> tuple[str, ...]:
    """``n`` colours from a 9-colour sequence, spread evenly (light to dark)."""
    if palette == "RdYlGn" and n == 4:
        colours = RDYLGN_4
    else:
        base = PALETTES[palette]
        if n == 1:
            colours = (base[len(base) // 2],)
        else:
            colours = tuple(base[round(i * (len(base) - 1) / (n - 1))] for i in range(n))
    return tuple(reversed(colours)) if reverse else colours


def classify(
    values: Sequence[float | None],
    *,
    method: str,
    k: int = 5,
    breaks: Sequence[float] | None = None,
    palette: str = "YlOrRd",
    unit: str = "",
) -> Classified:
    """Classify ``values`` (None = no data) into at most ``k`` classes.

    ``breaks`` are the thresholds for ``fixed`` (required there, refused
    elsewhere). Every value with data gets exactly one class; the legend's
    counts add up to the number of values with data.
    """
    if method not in METHODS:
        raise InvalidInput(f"classify {method!r} is not one of {', '.join(METHODS)}")
    if method == "fixed":
        if not breaks:
            raise InvalidInput("classify=fixed needs breaks, for example breaks=60,80,95")
    elif breaks:
        raise InvalidInput(f"breaks are for classify=fixed, not {method}")
    elif not MIN_CLASSES <= k <= MAX_CLASSES:
        raise InvalidInput(f"k={k}: give between {MIN_CLASSES} and {MAX_CLASSES} classes")
    present = np.array([v for v in values if v is not None], dtype=float)
    notes: list[str] = []
    if method == "fixed":
        inner = tuple(float(b) for b in breaks or ())
        closed = "left"
    else:
        inner, note = _data_breaks(present, method=method, k=k)
        closed = "right"
        notes += [note] if note else []
    index = [None if v is None else _class_of(v, inner=inner, closed=closed) for v in values]
    n = len(inner) + 1
    colours_by_class = palette_colours(palette, n=n)
    lo = float(present.min()) if present.size else 0.0
    hi = float(present.max()) if present.size else 0.0
    bounds = [min(lo, inner[0]) if inner else lo, *inner, max(hi, inner[-1]) if inner else hi]
    counts = [index.count(i) for i in range(n)]
    legend_classes = tuple(
        LegendClass(
            lower=bounds[i], upper=bounds[i + 1],
            label=_label(i, n=n, lower=bounds[i], upper=bounds[i + 1], closed=closed, unit=unit),
            colour=colours_by_class[i], count=counts[i],
        )
        for i in range(n)
    )  # fmt: skip
    no_data = LegendClass(
        lower=math.nan, upper=math.nan, label="无数据 no data", colour=NO_DATA_COLOUR,
        count=index.count(None),
    )  # fmt: skip
    legend = Legend(
        method=method, closed=closed, breaks=inner, classes=legend_classes, no_data=no_data,
        unit=unit, notes=tuple(notes),
    )  # fmt: skip
    colours = tuple(NO_DATA_COLOUR if i is None else colours_by_class[i] for i in index)
    return Classified(classes=tuple(index), colours=colours, legend=legend)


def _data_breaks(
    present: np.ndarray, *, method: str, k: int
) -> tuple[tuple[float, ...], str | None]:
    """Inner thresholds (upper bounds of all classes but the last), deduplicated."""
    distinct = np.unique(present)
    if distinct.size <= 1:
        return (), "one value only: one class" if distinct.size else None
    k_used = min(k, int(distinct.size))
    scheme = {
        "quantiles": mapclassify.Quantiles,
        "equal_interval": mapclassify.EqualInterval,
        "natural_breaks": mapclassify.FisherJenks,
    }[method]
    with warnings.catch_warnings():
        # mapclassify warns when quantiles collide; we merge them below and say so.
        warnings.simplefilter("ignore")
        bins = [float(b) for b in scheme(present, k=k_used).bins]
    inner = tuple(sorted(set(bins[:-1])))
    note = None
    if len(inner) + 1 < k:
        note = f"{len(inner) + 1} classes instead of {k}: the values do not separate into more"
    return inner, note


def _class_of(value: float, *, inner: tuple[float, ...], closed: str) -> int:
    if closed == "left":
        return bisect.bisect_right(inner, value)
    return bisect.bisect_left(inner, value)


def _label(i: int, *, n: int, lower: float, upper: float, closed: str, unit: str) -> str:
    lo, hi = _fmt(lower), _fmt(upper)
    if n == 1:
        return f"{lo}{unit}" if lo == hi else f"{lo}–{hi}{unit}"
    if closed == "left":
        if i == 0:
            return f"< {hi}{unit}"
        if i == n - 1:
            return f"≥ {lo}{unit}"
        return f"{lo}–{hi}{unit}"
    if i == 0:
        return f"≤ {hi}{unit}"
    if i == n - 1:
        return f"> {lo}{unit}"
    return f"{lo}–{hi}{unit}"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
