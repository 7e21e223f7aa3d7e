"""GET /api/figures: every key figure equals the layers' totals under the
area, on the day and the day before, and those are the area's own."""

from __future__ import annotations

import pytest

COUNTY = "445321"
LAYER_OF = {
    "coverage": "coverage", "incomplete": "incomplete", "quarantine": "quarantine",
    "quarantine_overdue": "quarantine_overdue", "cases": "cases",
    "checkpoint_flags": "checkpoint_flags",
}  # fmt: skip


def totals(client, layer: str, *, as_of: str, level: str | None = None) -> dict:
    params = {"within": COUNTY, "as_of": as_of}
    if level:
        params["level"] = level
    response = client.get(f"/api/layers/{layer}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["totals"]


def expected(client, *, as_of: str, level: str | None = None) -> dict[str, float | None]:
    t = {layer: totals(client, layer, as_of=as_of, level=level) for layer in
         ("coverage", "incomplete", "quarantine", "quarantine_overdue", "cases", "checkpoint_flags")}  # fmt: skip
    return {
        "households": t["coverage"]["households"],
        "visited": t["coverage"]["numerator"] + t["incomplete"]["numerator"],
        "coverage": t["coverage"]["value"],
        "incomplete": t["incomplete"]["numerator"],
        "quarantine": t["quarantine"]["numerator"],
        "quarantine_overdue": t["quarantine_overdue"]["numerator"],
        "cases": t["cases"]["numerator"],
        "checkpoint_flags": t["checkpoint_flags"]["numerator"],
    }


def test_figures_equal_the_layers_totals(demo_client) -> None:
    response = demo_client.get("/api/figures", params={"within": COUNTY, "as_of": "2020-02-06"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["within"] == COUNTY and body["area"]["level"] == "county"
    assert body["as_of"] == "2020-02-06" and body["previous"] == "2020-02-05"
    figures = {f["id"]: f for f in body["figures"]}
    assert list(figures) == [
        "households", "visited", "coverage", "incomplete", "quarantine",
        "quarantine_overdue", "cases", "checkpoint_flags",
    ]  # fmt: skip
    today = expected(demo_client, as_of="2020-02-06")
    before = expected(demo_client, as_of="2020-02-05")
    for name, figure in figures.items():
        assert figure["value"] == pytest.approx(today[name]), name
        assert figure["previous"] == pytest.approx(before[name]), name
        if today[name] is not None and before[name] is not None:
            assert figure["change"] == pytest.approx(round(today[name] - before[name], 2)), name
    # The demo has a round in progress, households, visits and quarantines on that day.
    assert figures["households"]["value"] > 0
    assert figures["visited"]["value"] > 0
    assert figures["coverage"]["value"] is not None
    assert figures["quarantine"]["value"] > 0
    # The sum over the townships (the layers' default level) is the county's own figure.
    own = expected(demo_client, as_of="2020-02-06", level="county")
    assert own == today


def test_figures_default_to_the_accounts_area_and_refuse_others(demo_client) -> None:
    whole = demo_client.get("/api/figures", params={"as_of": "2020-02-06"})
    assert whole.status_code == 200, whole.text
    assert whole.json()["within"] is None  # an admin: the whole map
    missing = demo_client.get("/api/figures", params={"within": "999999", "as_of": "2020-02-06"})
    assert missing.status_code == 404
