"""Which requests the audit trail records, and the row each gets.

Every successful write (POST, PUT, PATCH, DELETE) and every successful read
of a route that returns personal data, by a logged-in account, gets one row
in the request's own transaction: if the write is rolled back, so is its
row; if the row cannot be written, neither is the write. Logins, failed
logins, logouts and reveals are recorded where they happen (api.routes.auth,
the reveal route), with their reason.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from db.audit import append

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes whose answers name people or their homes (path templates).
PERSONAL_ROUTES = frozenset({
    "/api/residents", "/api/residents/{resident_id}", "/api/areas/{code}/households",
    "/api/cases", "/api/cases/{case_id}", "/api/visits",
    "/api/checkpoints/{checkpoint_id}/passages", "/api/geocode/review",
    "/api/imports/{import_id}/rejected.csv", "/api/imports/{import_id}/rejected.xlsx",
    "/api/tasks", "/api/routes/visits", "/api/routes/visits.gpx",
    "/api/areas/{grid}/microgrids",
})  # fmt: skip
# Recorded by their routes themselves, with more to say.
SELF_AUDITED = frozenset(
    {"/api/auth/token", "/api/auth/logout", "/api/residents/{resident_id}/reveal"}
)


def record_request(request: Request, session: Session) -> None:
    """Append the request's audit row, if it needs one (called as the
    request's session is about to commit)."""
    principal = getattr(request.state, "principal", None)
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if principal is None or path is None or path in SELF_AUDITED:
        return
    is_write = request.method in WRITE_METHODS
    if not is_write and path not in PERSONAL_ROUTES:
        return
    params = dict(request.path_params)
    object_id = next(iter(params.values()), None) if params else None
    append(
        session, action="write" if is_write else "read_personal",
        user_id=principal.account.id, user_name=principal.account.name,
        role=principal.account.role, method=request.method, path=path,
        object_type=path.split("/")[2] if path.count("/") >= 2 else None,
        object_id=None if object_id is None else str(object_id),
        area_code=request.query_params.get("within") or params.get("code"),
        detail={"query": dict(request.query_params)} if request.query_params else None,
    )  # fmt: skip
