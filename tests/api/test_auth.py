"""Logging in: tokens, lock-out, revocation, disabled accounts, rate limits,
accounts managed by admins only, mass assignment refused, the audit trail."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from sqlalchemy import text

from api.auth import RATE_LIMITER, get_auth_settings
from api.security import issue_token
from api.settings import AuthSettings
from tests.api.conftest import TEST_PASSWORD, bearer

PROBLEM = "application/problem+json"


@pytest.fixture
def alice(login):
    return login("alice", "admin")


def token_of(test_client) -> str:
    return test_client.headers["Authorization"].removeprefix("Bearer ")


def test_no_token_is_401_with_a_reason(anonymous) -> None:
    response = anonymous.get("/api/auth/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert "log in first" in response.json()["detail"]


def test_login_gives_a_token_that_names_the_account(alice) -> None:
    me = alice.get("/api/auth/me").json()
    assert me["name"] == "alice" and me["role"] == "admin"
    assert "manage_accounts" in me["capabilities"]
    assert "password_hash" not in me and "token_version" not in me


def test_wrong_password_and_unknown_name_get_the_same_answer(anonymous, login) -> None:
    login("bob", "admin")
    wrong = anonymous.post("/api/auth/token", data={"username": "bob", "password": "nope-nope"})
    unknown = anonymous.post(
        "/api/auth/token", data={"username": "nobody", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "wrong name or password"


def test_five_failures_in_15_minutes_lock_the_account(anonymous, login, session) -> None:
    login("carol", "admin")
    for _ in range(5):
        assert anonymous.post("/api/auth/token", data={"username": "carol", "password": "bad-pass"}).status_code == 401  # fmt: skip
    locked = anonymous.post(
        "/api/auth/token", data={"username": "carol", "password": TEST_PASSWORD}
    )
    assert locked.status_code == 429
    assert "locked after 5 failed logins in 15 minutes" in locked.json()["detail"]
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    # Fifteen minutes later (the failures moved back in time) the right password works.
    session.execute(
        text("UPDATE login_failure SET at = at - interval '16 minutes' WHERE user_name = 'carol'")
    )
    assert anonymous.post("/api/auth/token", data={"username": "carol", "password": TEST_PASSWORD}).status_code == 200  # fmt: skip


def test_four_failures_then_success_clears_the_count(anonymous, login) -> None:
    login("dave", "admin")
    for _ in range(4):
        anonymous.post("/api/auth/token", data={"username": "dave", "password": "bad-pass"})
    assert anonymous.post("/api/auth/token", data={"username": "dave", "password": TEST_PASSWORD}).status_code == 200  # fmt: skip
    for _ in range(4):
        anonymous.post("/api/auth/token", data={"username": "dave", "password": "bad-pass"})
    assert anonymous.post("/api/auth/token", data={"username": "dave", "password": TEST_PASSWORD}).status_code == 200  # fmt: skip


def test_logout_revokes_the_token_at_once(alice, anonymous) -> None:
    token = token_of(alice)
    assert alice.post("/api/auth/logout").status_code == 204
    after = anonymous.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401 and "revoked" in after.json()["detail"]


def test_other_tokens_survive_a_logout(alice, anonymous) -> None:
    second = bearer(anonymous, "alice")
    alice.post("/api/auth/logout")
    assert anonymous.get("/api/auth/me", headers=second).status_code == 200


def test_disabling_an_account_revokes_its_tokens_at_once(client, login, anonymous) -> None:
    erin = login("erin", "admin")
    assert erin.get("/api/auth/me").status_code == 200
    assert client.post("/api/users/erin/disable").status_code == 200
    gone = erin.get("/api/auth/me")
    assert gone.status_code == 401 and "disabled" in gone.json()["detail"]
    again = anonymous.post("/api/auth/token", data={"username": "erin", "password": TEST_PASSWORD})
    assert again.status_code == 401


def test_forged_and_expired_tokens_are_refused(alice, anonymous) -> None:
    claims = jwt.decode(token_of(alice), options={"verify_signature": False})
    forged = jwt.encode(claims | {"sub": "1"}, "not the key", algorithm="HS256")
    response = anonymous.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and "not valid" in response.json()["detail"]
    me = alice.get("/api/auth/me").json()
    old, _ = issue_token(user_id=me["id"], version=0, settings=get_auth_settings(),
                         now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))  # fmt: skip
    response = anonymous.get("/api/auth/me", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_the_rate_limit_answers_429_naming_it(app_in_session, login) -> None:
    app_in_session.dependency_overrides[get_auth_settings] = lambda: AuthSettings(
        requests_per_minute=3
    )
    frank = login("frank", "admin")
    try:
        codes = [frank.get("/api/auth/me").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = frank.get("/api/auth/me")
        assert "3 requests per minute per account" in limited.json()["detail"]
        assert int(limited.headers["retry-after"]) > 0
    finally:
        RATE_LIMITER._seen.clear()


def test_only_admins_manage_accounts(login, session) -> None:
    session.execute(text(
        "INSERT INTO area (code, name, level, county_code, valid_from, geom) VALUES ('990201',"
        " '测试县', 'county', '990201', '2020-01-01',"
        " ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)))', 4326))"))  # fmt: skip
    for name, role in (("gina", "commander"), ("henry", "wall_viewer")):
        other = login(name, role, areas=["990201"], personal=True)
        assert other.get("/api/users").status_code == 403
        response = other.post(
            "/api/users", json={"name": "x", "role": "admin", "password": "12345678"}
        )
        assert response.status_code == 403
        assert f"a {role} account may not manage accounts" == response.json()["detail"]
        assert other.get("/api/audit").status_code == 403


def test_mass_assignment_is_refused_naming_the_field(client) -> None:
    for field, value in (("id", 7), ("token_version", 3), ("created_at", "2020-01-01"),
                         ("disabled_at", None)):  # fmt: skip
        response = client.post("/api/users", json={"name": "ivy", "role": "admin",
                                                   "password": "long enough", field: value})  # fmt: skip
        assert response.status_code == 422, field
        assert field in response.json()["detail"]


def test_every_write_and_login_is_in_the_audit_trail(client, anonymous, session) -> None:
    before = session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    made = client.post(
        "/api/users", json={"name": "jack", "role": "admin", "password": "long enough"}
    )
    assert made.status_code == 201
    anonymous.post("/api/auth/token", data={"username": "jack", "password": "wrong one"})
    anonymous.post("/api/auth/token", data={"username": "jack", "password": "long enough"})
    rows = session.execute(
        text("SELECT action, user_name, method, path FROM audit_log ORDER BY id OFFSET :n"),
        {"n": before},
    ).all()
    assert ("write", "test_admin", "POST", "/api/users") in rows
    assert ("login_failed", "jack", "POST", "/api/auth/token") in rows
    assert ("login", "jack", "POST", "/api/auth/token") in rows
    listed = client.get("/api/audit", params={"user": "jack"}).json()
    assert {i["action"] for i in listed["items"]} >= {"login", "login_failed"}
