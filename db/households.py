"""What makes two registry rows the same household.

A household matched to a building is keyed by the building and its unit and
room; one known only by its address text is keyed by the normalised text.
Keys are unique per county (index ``uq_household_address_key``), so importing
the same file twice creates no household twice.

Unit and room are compared by their number: "2单元302室", "2-302" and "302房"
in unit 2 are one household. A missing unit is unit 1 — how people write the
address of a house or a one-stairwell building.
"""

from __future__ import annotations

import re
import unicodedata

_SUFFIXES = re.compile(r"(单元|室|房|号|户)$")


def _core(value: str | None) -> str:
    text = unicodedata.normalize("NFKC", value or "").strip()
    return _SUFFIXES.sub("", text).lstrip("0") or ""


def building_household_key(*, building_id: int, unit: str | None, room: str | None) -> str:
    return f"b{building_id}|{_core(unit) or '1'}|{_core(room)}"


def address_household_key(*, normalised_address: str) -> str:
    return f"a|{normalised_address}"
