"""A page of a list: how many rows, from where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """``limit`` rows (≥ 1) after skipping ``offset`` (≥ 0), in the list's order."""

    limit: int
    offset: int
