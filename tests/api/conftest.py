"""An HTTP client whose requests share the test's rolled-back session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_session


@pytest.fixture
def client(session) -> Iterator[TestClient]:
    app = create_app()

    def test_session() -> Iterator:
        # Each request in a savepoint: a failed request rolls back its own writes only.
        savepoint = session.begin_nested()
        try:
            yield session
        except Exception:
            savepoint.rollback()
            raise
        else:
            if savepoint.is_active:
                savepoint.commit()

    app.dependency_overrides[get_session] = test_session
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def demo_client(demo_db_url) -> Iterator[TestClient]:
    """A client on the small demo county; its requests commit, so use it only to read."""
    from sqlalchemy import create_engine

    from api.deps import get_engine

    app = create_app()
    demo_engine = create_engine(demo_db_url)
    app.dependency_overrides[get_engine] = lambda: demo_engine
    with TestClient(app) as test_client:
        yield test_client
    demo_engine.dispose()
