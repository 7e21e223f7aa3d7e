"""The audit trail: one row per write and per read of personal data.

Append-only, and the database enforces it (migration 0005): requests work as
``wangge_app``, which may insert and read ``audit_log`` but not update,
delete or truncate it, and a trigger refuses those to every role.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.paging import Page


@dataclass(frozen=True)
class AuditEntry:
    """Who (user id, name, role), when, what (action, method, path, object),
    where (area), why (reason), with which outcome (status code)."""

    id: int
    at: dt.datetime
    user_id: int | None
    user_name: str | None
    role: str | None
    action: str
    method: str | None
    path: str | None
    object_type: str | None
    object_id: str | None
    area_code: str | None
    reason: str | None
    status_code: int | None
    detail: Any


_COLUMNS = (
    "id, at, user_id, user_name, role, action, method, path, object_type, object_id,"
    " area_code, reason, status_code, detail"
)


def append(
    session: Session,
    *,
    action: str,
    user_id: int | None = None,
    user_name: str | None = None,
    role: str | None = None,
    method: str | None = None,
    path: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    area_code: str | None = None,
    reason: str | None = None,
    status_code: int | None = None,
    detail: Any = None,
) -> None:
    """Add one row to the trail (in the caller's transaction)."""
    session.execute(
        text(
            f"INSERT INTO audit_log ({_COLUMNS.replace('id, at, ', '', 1)}) VALUES"
            " (:user_id, :user_name, :role, :action, :method, :path, :object_type, :object_id,"
            " :area_code, :reason, :status_code, CAST(:detail AS jsonb))"
        ),
        {
            "user_id": user_id, "user_name": user_name, "role": role, "action": action,
            "method": method, "path": path, "object_type": object_type, "object_id": object_id,
            "area_code": area_code, "reason": reason, "status_code": status_code,
            "detail": None if detail is None else json.dumps(detail, ensure_ascii=False),
        },
    )  # fmt: skip


def list_entries(
    session: Session,
    *,
    page: Page,
    user_name: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[list[AuditEntry], int]:
    """A page of the trail, newest first, filtered; and how many rows match."""
    clauses: list[str] = []
    params: dict[str, object] = {"limit": page.limit, "offset": page.offset}
    for column, value in (("user_name", user_name), ("action", action),
                          ("object_type", object_type), ("object_id", object_id)):  # fmt: skip
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if since is not None:
        clauses.append("at >= :since")
        params["since"] = since
    if until is not None:
        clauses.append("at < :until")
        params["until"] = until
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    matched = int(
        session.execute(text(f"SELECT count(*) FROM audit_log{where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {_COLUMNS} FROM audit_log{where} ORDER BY id DESC LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return [AuditEntry(*row) for row in rows], matched
