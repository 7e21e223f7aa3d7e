"""Cases over HTTP: report, change status, read, list by residence and by the
status on a date; persons masked in every response; every bad input a 4xx
problem+json with the reason, never a 500."""

from __future__ import annotations

import pytest

from tests.db.test_cases import COUNTY, MG_A1, MG_B1, TOWN_A, TOWN_B, County, build_county

PROBLEM = "application/problem+json"


@pytest.fixture
def county(session) -> County:
    return build_county(session)


def post_case(client, **body):
    body.setdefault("status", "suspected")
    body.setdefault("reported_on", "2020-02-01")
    return client.post("/api/cases", json=body)


def assert_problem(response, status: int | tuple[int, ...], needle: str) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert needle in response.json()["detail"], response.json()["detail"]


def test_report_read_change_and_list(client, county) -> None:
    created = post_case(
        client, resident_id=county.alice, status="suspected", onset_date="2020-01-30",
        reported_by="县人民医院（B 镇）", note="发热门诊",
    )  # fmt: skip
    assert created.status_code == 201, created.text
    case = created.json()
    assert created.headers["location"] == f"/api/cases/{case['id']}"
    assert case["home_microgrid_code"] == MG_A1 and case["county_code"] == COUNTY
    assert case["person"]["name"] == "张丽"
    assert case["person"]["id_number"].count("*") == 10
    assert [h["status"] for h in case["history"]] == ["suspected"]

    changed = client.post(
        f"/api/cases/{case['id']}/status",
        json={"status": "confirmed", "effective_on": "2020-02-04", "note": "核酸阳性"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "confirmed"
    one = client.get(f"/api/cases/{case['id']}").json()
    assert [(h["status"], h["effective_on"]) for h in one["history"]] == [
        ("suspected", "2020-02-01"), ("confirmed", "2020-02-04"),
    ]  # fmt: skip

    def listed(**params) -> dict:
        response = client.get("/api/cases", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    before = listed(as_of="2020-02-03", within=TOWN_A)
    assert before["numberMatched"] == 1 and before["items"][0]["status"] == "suspected"
    after = listed(as_of="2020-02-04", within=TOWN_A)
    assert after["items"][0]["status"] == "confirmed"
    assert listed(as_of="2020-02-03", status="confirmed")["numberMatched"] == 0
    assert listed(as_of="2020-02-05", status="confirmed")["numberMatched"] == 1
    assert listed(as_of="2020-02-05", status="active")["numberMatched"] == 1
    assert listed(as_of="2020-01-31")["numberMatched"] == 0
    # Reported by a hospital in town B, but counted where she lives (town A).
    assert listed(as_of="2020-02-05", within=TOWN_B)["numberMatched"] == 0


def test_paging(client, county) -> None:
    for day in range(1, 6):
        assert (
            post_case(client, resident_id=county.bob, reported_on=f"2020-02-0{day}").status_code
            == 201
        )
    page = client.get("/api/cases", params={"within": TOWN_B, "limit": 2, "offset": 2}).json()
    assert (page["numberMatched"], page["numberReturned"], len(page["items"])) == (5, 2, 2)
    assert [i["reported_on"] for i in page["items"]] == ["2020-02-03", "2020-02-04"]
    assert page["links"][0]["rel"] == "next"
    assert all(i["home_microgrid_code"] == MG_B1 for i in page["items"])


def test_no_full_id_or_phone_number_in_any_response(client, county) -> None:
    created = post_case(client, resident_id=county.alice)
    case_id = created.json()["id"]
    responses = [
        created,
        client.post(f"/api/cases/{case_id}/status", json={"status": "confirmed", "effective_on": "2020-02-02"}),
        client.get(f"/api/cases/{case_id}"),
        client.get("/api/cases", params={"within": COUNTY}),
        client.get("/api/cases"),
    ]  # fmt: skip
    for response in responses:
        assert response.status_code < 300
        assert county.alice_id_number not in response.text
        assert county.alice_phone not in response.text
        assert county.alice_id_number[-4:] in response.text  # masked, not dropped


def test_bare_address_and_household_cases(client, county) -> None:
    address = post_case(client, address="某镇某村 12 号", county_code=COUNTY)
    assert address.status_code == 201 and address.json()["person"] is None
    household = post_case(client, household_id=county.household_b1)
    assert household.json()["home_microgrid_code"] == MG_B1
    in_county = client.get("/api/cases", params={"within": COUNTY, "as_of": "2020-02-01"}).json()
    assert in_county["numberMatched"] == 2


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"resident_id": 999_999_999}, 422, "no resident with id 999999999"),
        ({"household_id": 999_999_999}, 422, "no household with id 999999999"),
        ({"resident_id": "ALICE", "address": "某村"}, 422, "exactly one of"),
        ({}, 422, "exactly one of"),
        ({"address": "某村"}, 422, "needs county_code"),
        ({"address": "某村", "county_code": TOWN_A}, 422, "is not a county area"),
        ({"address": "某村", "county_code": "nope"}, 422, "is not a county area"),
        ({"resident_id": "ALICE", "status": "cured"}, 422, "body.status"),
        ({"resident_id": "ALICE", "reported_on": "2020-02-30"}, 422, "body.reported_on"),
        ({"resident_id": "ALICE", "reported_on": "2999-01-01"}, 422, "is after today"),
        (
            {"resident_id": "ALICE", "onset_date": "2020-02-09"},
            422,
            "onset_date 2020-02-09 is after",
        ),
        (
            {"resident_id": "ALICE", "colour": "red"},
            422,
            "body.colour: Extra inputs are not permitted",
        ),
        ({"resident_id": 2**70}, 422, "body.resident_id"),
        ({"resident_id": -1}, 422, "body.resident_id"),
        ({"resident_id": "ALICE", "note": "a\x00b"}, 422, "the body holds a NUL character"),
        (
            {"resident_id": "ALICE", "county_code": "990200"},
            422,
            "disagrees with the resident's county",
        ),
    ],
)
def test_bad_reports_are_4xx_problems(client, county, body, status, needle) -> None:
    body = {k: county.alice if v == "ALICE" else v for k, v in body.items()}
    assert_problem(post_case(client, **body), status, needle)


def test_bad_requests_are_4xx_problems(client, county) -> None:
    case_id = post_case(client, resident_id=county.alice).json()["id"]
    status = f"/api/cases/{case_id}/status"
    assert_problem(
        client.post(status, json={"status": "recovered", "effective_on": "2020-01-31"}),
        422, "before the case was reported (2020-02-01)",
    )  # fmt: skip
    assert_problem(
        client.post(status, json={"status": "recovered", "effective_on": "2999-01-01"}),
        422,
        "after today",
    )
    assert_problem(
        client.post(status, json={"status": "gone", "effective_on": "2020-02-02"}),
        422,
        "body.status",
    )
    assert_problem(client.post(status, json={"status": "recovered"}), 422, "body.effective_on")
    assert_problem(
        client.post(status, content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "JSON",
    )
    assert_problem(
        client.post("/api/cases/999999999/status", json={"status": "recovered", "effective_on": "2020-02-02"}),
        404, "no case with id 999999999",
    )  # fmt: skip
    assert_problem(client.get("/api/cases/999999999"), 404, "no case with id 999999999")
    assert_problem(client.get(f"/api/cases/{2**70}"), 422, "case_id")
    assert_problem(client.get("/api/cases/abc"), 422, "case_id")
    assert_problem(client.get("/api/cases", params={"status": "cured"}), 422, "status 'cured'")
    assert_problem(
        client.get("/api/cases", params={"within": "nope"}), 404, "no area with code 'nope'"
    )
    assert_problem(
        client.get("/api/cases", params={"within": "a\x00b"}), 422, "the query holds a NUL"
    )
    assert_problem(client.get("/api/cases", params={"as_of": "yesterday"}), 422, "as_of")
    assert_problem(client.get("/api/cases", params={"offset": -1}), 422, "offset")
    assert_problem(client.get("/api/cases", params={"limit": 0}), 422, "limit")
    assert_problem(
        client.post("/api/cases", content=b"[]", headers={"content-type": "application/json"}),
        422,
        "body",
    )
    # Nothing of the refused requests was kept.
    assert len(client.get(f"/api/cases/{case_id}").json()["history"]) == 1
