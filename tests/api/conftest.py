"""HTTP clients for the API tests, logged in for real.

``client`` shares the test's rolled-back session and is logged in as an admin
(an account created in that session, a token from ``/api/auth/token``);
``anonymous`` is the same app without a token; ``login(name, role, areas)``
makes another account and returns a client logged in as it. ``demo_client``
reads the small demo county as an admin, through the request role
``wangge_app`` like a served app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from api.app import create_app
from api.audit import record_request
from api.deps import get_engine, get_session
from api.security import hash_password
from db.accounts import create_account, replace_account
from db.engine import engine_for
from geo.localtime import local_today

TEST_PASSWORD = "correct horse battery"
_HASH = hash_password(TEST_PASSWORD)


def bearer(test_client: TestClient, name: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    response = test_client.post("/api/auth/token", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def app_in_session(session):
    """The app with every request in a savepoint of the test's session."""
    app = create_app()

    def test_session(request: Request) -> Iterator:  # the contract of api.deps.get_session
        savepoint = session.begin_nested()
        try:
            yield session
            record_request(request, session)
        except Exception:
            savepoint.rollback()
            raise
        else:
            if savepoint.is_active:
                savepoint.commit()

    app.dependency_overrides[get_session] = test_session
    return app


@pytest.fixture
def anonymous(app_in_session) -> Iterator[TestClient]:
    with TestClient(app_in_session, raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def login(app_in_session, session) -> Callable[..., TestClient]:
    """``login(name, role, areas=(), personal=False)`` → a client logged in as a new account."""
    made: list[TestClient] = []

    def make(name: str, role: str, areas=(), personal: bool = False) -> TestClient:
        create_account(session, name=name, role=role, areas=list(areas), password_hash=_HASH,
                       can_view_personal=personal, today=local_today())  # fmt: skip
        test_client = TestClient(app_in_session, raise_server_exceptions=True)
        test_client.headers.update(bearer(test_client, name))
        made.append(test_client)
        return test_client

    yield make
    for test_client in made:
        test_client.close()


@pytest.fixture
def client(login) -> TestClient:
    """Logged in as an admin (every area, every capability)."""
    return login("test_admin", "admin")


@pytest.fixture(scope="session")
def demo_admin(demo_db_url) -> str:
    """An admin account in the demo database (made once, as the schema owner)."""
    from db.engine import session_scope

    with session_scope(create_engine(demo_db_url)) as session:
        replace_account(session, name="demo_test_admin", role="admin", areas=[],
                        password_hash=_HASH, today=local_today())  # fmt: skip
    return "demo_test_admin"


@pytest.fixture
def demo_client(demo_db_url, demo_admin) -> Iterator[TestClient]:
    """A client on the small demo county, as an admin, working as the request
    role; its requests commit, so use it only to read."""
    app = create_app()
    demo_engine = engine_for(demo_db_url)
    app.dependency_overrides[get_engine] = lambda: demo_engine
    with TestClient(app) as test_client:
        test_client.headers.update(bearer(test_client, demo_admin))
        yield test_client
