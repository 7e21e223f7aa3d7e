"""What makes two registry rows the same household.

A household matched to a building is keyed by the building and its unit and
room; one known only by its address text is keyed by the normalised text.
Keys are unique per county (index ``uq_household_address_key``), so importing
the same file twice creates no household twice.
"""

from __future__ import annotations


def building_household_key(*, building_id: int, unit: str | None, room: str | None) -> str:
    return f"b{building_id}|{unit or ''}|{room or ''}"


def address_household_key(*, normalised_address: str) -> str:
    return f"a|{normalised_address}"
