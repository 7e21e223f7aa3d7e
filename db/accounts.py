"""Accounts: who may log in, with which role, over which areas.

A role is scoped to area subtrees (``user_scope``): an admin needs none (all
areas); a commander has areas of any level; a grid leader grids; a grid
worker micro-grids; a wall viewer areas of any level. Passwords arrive here
already hashed (api.security); this module never sees one in clear.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.areas import IN_FORCE
from db.models import ROLES
from geo.errors import Conflict, InvalidInput, NotFound

# The level an account's areas must have, per role (None: any level).
SCOPE_LEVEL: dict[str, str | None] = {
    "admin": None,
    "commander": None,
    "grid_leader": "grid",
    "grid_worker": "microgrid",
    "wall_viewer": None,
}
NAME_MAX_CHARS = 64


@dataclass(frozen=True)
class Account:
    """An account as the server sees it (no password hash)."""

    id: int
    name: str
    role: str
    areas: tuple[str, ...]
    can_view_personal: bool
    token_version: int
    disabled: bool


@dataclass(frozen=True)
class Credentials:
    """What a login checks: the account and its password hash."""

    account: Account
    password_hash: str


def create_account(
    session: Session,
    *,
    name: str,
    role: str,
    areas: Sequence[str],
    password_hash: str,
    can_view_personal: bool = False,
    today: dt.date,
) -> Account:
    """A new account. Refuses an unknown role, a taken name, an area that is
    not in force today or not of the level the role works at, and a role
    other than admin without an area."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX_CHARS or any(c.isspace() for c in name):
        raise InvalidInput(f"name {name!r}: 1 to {NAME_MAX_CHARS} characters, no spaces")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role != "admin" and not areas:
        raise InvalidInput(f"a {role} needs at least one area (--area CODE)")
    _check_areas(session, role=role, areas=areas, today=today)
    if session.execute(text("SELECT 1 FROM app_user WHERE name = :n"), {"n": name}).first():
        raise Conflict(f"an account named {name!r} exists already")
    user_id = int(
        session.execute(
            text(
                "INSERT INTO app_user (name, role, can_view_personal, password_hash)"
                " VALUES (:name, :role, :personal, :hash) RETURNING id"
            ),
            {"name": name, "role": role, "personal": can_view_personal or role == "admin",
             "hash": password_hash},
        ).scalar_one()
    )  # fmt: skip
    for code in sorted(set(areas)):
        session.execute(
            text("INSERT INTO user_scope (user_id, area_code) VALUES (:u, :a)"),
            {"u": user_id, "a": code},
        )
    return get_account(session, user_id=user_id)


def _check_areas(session: Session, *, role: str, areas: Sequence[str], today: dt.date) -> None:
    level = SCOPE_LEVEL[role]
    for code in areas:
        row = session.execute(
            text(f"SELECT a.level FROM area a WHERE a.code = :code AND {IN_FORCE}"),
            {"code": code, "as_of": today},
        ).first()
        if row is None:
            raise InvalidInput(f"area {code!r} does not exist today")
        if level is not None and row[0] != level:
            raise InvalidInput(f"a {role} works on {level} areas; {code} is a {row[0]}")


_ACCOUNT_SQL = """
SELECT u.id, u.name, u.role,
       coalesce(array_agg(s.area_code ORDER BY s.area_code) FILTER (WHERE s.area_code IS NOT NULL), '{}'),
       u.can_view_personal, u.token_version, u.disabled_at IS NOT NULL, u.password_hash
FROM app_user u LEFT JOIN user_scope s ON s.user_id = u.id
"""


def _account(row: Sequence[object]) -> Account:
    return Account(
        id=int(row[0]), name=str(row[1]), role=str(row[2]), areas=tuple(row[3]),  # type: ignore[call-overload, arg-type]
        can_view_personal=bool(row[4]), token_version=int(row[5]), disabled=bool(row[6]),  # type: ignore[call-overload]
    )  # fmt: skip


def get_account(session: Session, *, user_id: int) -> Account:
    row = session.execute(
        text(_ACCOUNT_SQL + " WHERE u.id = :id GROUP BY u.id"), {"id": user_id}
    ).first()
    if row is None:
        raise NotFound(f"no account with id {user_id}")
    return _account(row)


def credentials(session: Session, *, name: str) -> Credentials | None:
    """The account named ``name`` with its password hash, or None."""
    row = session.execute(
        text(_ACCOUNT_SQL + " WHERE u.name = :name GROUP BY u.id"), {"name": name}
    ).first()
    return None if row is None else Credentials(account=_account(row), password_hash=str(row[7]))


def list_accounts(session: Session) -> list[Account]:
    rows = session.execute(text(_ACCOUNT_SQL + " GROUP BY u.id ORDER BY u.name")).all()
    return [_account(r) for r in rows]


def disable_account(session: Session, *, name: str) -> Account:
    """Disable an account; its tokens stop working at once (token_version)."""
    updated = session.execute(
        text(
            "UPDATE app_user SET disabled_at = coalesce(disabled_at, now()),"
            " token_version = token_version + 1, updated_at = now() WHERE name = :name RETURNING id"
        ),
        {"name": name},
    ).first()
    if updated is None:
        raise NotFound(f"no account named {name!r}")
    return get_account(session, user_id=int(updated[0]))


def set_password(session: Session, *, name: str, password_hash: str) -> None:
    """A new password; every token issued before stops working."""
    updated = session.execute(
        text(
            "UPDATE app_user SET password_hash = :hash, token_version = token_version + 1,"
            " updated_at = now() WHERE name = :name RETURNING id"
        ),
        {"name": name, "hash": password_hash},
    ).first()
    if updated is None:
        raise NotFound(f"no account named {name!r}")


# -- lock-out and revocation ----------------------------------------------------------------
def record_login_failure(session: Session, *, name: str, client: str | None) -> None:
    session.execute(
        text("INSERT INTO login_failure (user_name, client) VALUES (:n, :c)"),
        {"n": name[:200], "c": client},
    )


def recent_failures(session: Session, *, name: str, window: dt.timedelta) -> list[dt.datetime]:
    """Failed logins of ``name`` within ``window``, oldest first (a success clears them)."""
    rows = session.execute(
        text("SELECT at FROM login_failure WHERE user_name = :n AND at > now() - :w ORDER BY at"),
        {"n": name, "w": window},
    ).all()
    return [r[0] for r in rows]


def clear_login_failures(session: Session, *, name: str) -> None:
    session.execute(text("DELETE FROM login_failure WHERE user_name = :n"), {"n": name})


def revoke_token(session: Session, *, jti: str, expires_at: dt.datetime) -> None:
    session.execute(
        text("INSERT INTO revoked_token (jti, expires_at) VALUES (:j, :e) ON CONFLICT DO NOTHING"),
        {"j": jti, "e": expires_at},
    )
    session.execute(text("DELETE FROM revoked_token WHERE expires_at < now()"))


def token_state(session: Session, *, user_id: int, jti: str) -> tuple[Account, bool] | None:
    """The account a token names and whether this token was revoked; None if
    the account is gone."""
    row = session.execute(
        text(
            _ACCOUNT_SQL.replace(
                "u.password_hash",
                "EXISTS (SELECT 1 FROM revoked_token r WHERE r.jti = :jti)",
            )
            + " WHERE u.id = :id GROUP BY u.id"
        ),
        {"id": user_id, "jti": jti},
    ).first()
    return None if row is None else (_account(row), bool(row[7]))


def replace_account(
    session: Session,
    *,
    name: str,
    role: str,
    areas: Sequence[str],
    password_hash: str,
    can_view_personal: bool = False,
    today: dt.date,
) -> Account:
    """Create the account, replacing one of the same name (the demo's accounts
    are re-made with every demo load; their old tokens stop working)."""
    session.execute(text("DELETE FROM app_user WHERE name = :n"), {"n": name})
    return create_account(
        session, name=name, role=role, areas=areas, password_hash=password_hash,
        can_view_personal=can_view_personal, today=today,
    )  # fmt: skip


def demo_scopes(session: Session, *, county_code: str, today: dt.date) -> dict[str, list[str]]:
    """Areas for one account of each role on a county: the county for the
    commander and the wall, the first grid (by code) of those with the most
    micro-grids for the grid leader, and that grid's first two micro-grids
    (or its only one) for the grid worker."""
    grid = session.execute(
        text(
            "SELECT g.code FROM area g WHERE g.level = 'grid' AND g.county_code = :county"
            " AND g.valid_from <= :as_of AND (g.valid_to IS NULL OR g.valid_to > :as_of)"
            " ORDER BY least(2, (SELECT count(*) FROM area m WHERE m.parent_code = g.code"
            " AND m.valid_to IS NULL)) DESC, g.code LIMIT 1"
        ),
        {"county": county_code, "as_of": today},
    ).scalar_one_or_none()
    if grid is None:
        raise NotFound(f"county {county_code} has no grid")
    microgrids = (
        session.execute(
            text(
                "SELECT code FROM area WHERE parent_code = :grid AND level = 'microgrid'"
                " AND valid_to IS NULL ORDER BY code LIMIT 2"
            ),
            {"grid": grid},
        )
        .scalars()
        .all()
    )
    return {
        "admin": [], "commander": [county_code], "grid_leader": [str(grid)],
        "grid_worker": [str(m) for m in microgrids], "wall_viewer": [county_code],
    }  # fmt: skip
