"""The audit trail is append-only, and the database enforces it: the role the
application works as (wangge_app) may insert and read it but not update,
delete or truncate it; and a trigger refuses those to the owner as well."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from db.audit import append
from db.engine import engine_for


@pytest.fixture
def as_app(db_url):
    """A connection working as the request role, in a transaction rolled back after."""
    engine = engine_for(db_url)
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


def test_the_request_role_is_not_the_owner(as_app) -> None:
    assert as_app.execute(text("SELECT current_user")).scalar_one() == "wangge_app"


def test_the_request_role_may_append_and_read(as_app) -> None:
    from sqlalchemy.orm import Session

    with Session(bind=as_app) as session:
        append(session, action="write", user_name="t", path="/api/test", reason="testing")
        found = session.execute(
            text("SELECT count(*) FROM audit_log WHERE path = '/api/test'")
        ).scalar_one()
    assert found == 1


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET reason = 'rewritten'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_the_request_role_cannot_rewrite_history(as_app, statement) -> None:
    as_app.execute(text("INSERT INTO audit_log (action) VALUES ('write')"))
    with pytest.raises(DBAPIError, match="permission denied"):
        as_app.execute(text(statement))


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET reason = 'rewritten'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_even_the_owner_cannot_rewrite_history(db_url, statement) -> None:
    engine = create_engine(db_url)  # the schema's owner
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(text("INSERT INTO audit_log (action) VALUES ('write')"))
        with pytest.raises(DBAPIError, match="audit_log is append-only"):
            connection.execute(text(statement))
        transaction.rollback()
    engine.dispose()
