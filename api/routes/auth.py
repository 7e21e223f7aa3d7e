"""Logging in and out, accounts, and the audit trail.

``POST /api/auth/token`` is the OAuth2 password flow (form fields
``username``, ``password``): a signed token that expires (8 hours: a shift).
Five failed logins of one account within 15 minutes lock it for the rest of
those 15 minutes (429, with ``Retry-After``). A wrong name and a wrong
password get the same answer in the same time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ROLE_CAPABILITIES, AuthSettingsDep, Principal, PrincipalDep
from api.deps import ApiSettingsDep, SessionDep
from api.errors import problem
from api.paging import Limit, Offset, page_of, paged
from api.security import dummy_verify, hash_password, issue_token, verify_password
from db.accounts import (
    Account,
    clear_login_failures,
    create_account,
    credentials,
    disable_account,
    list_accounts,
    recent_failures,
    record_login_failure,
    revoke_token,
)
from db.audit import append, list_entries
from geo.errors import InvalidInput, TooManyRequests
from geo.localtime import local_today

router = APIRouter(prefix="/api", tags=["auth"])

WRONG = "wrong name or password"


@router.post("/auth/token", summary="Log in (OAuth2 password flow): a bearer token")
def token(
    request: Request,
    session: SessionDep,
    settings: AuthSettingsDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> JSONResponse:
    name = form.username.strip()
    window = dt.timedelta(minutes=settings.lockout_minutes)
    failures = recent_failures(session, name=name, window=window)
    if len(failures) >= settings.lockout_failures:
        unlock = failures[-settings.lockout_failures] + window
        wait_s = max(1, int((unlock - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
        raise TooManyRequests(
            f"account locked after {settings.lockout_failures} failed logins in "
            f"{settings.lockout_minutes} minutes; try again in {wait_s} s",
            retry_after_s=wait_s,
        )
    found = credentials(session, name=name)
    client = request.client.host if request.client else None
    if found is None:
        dummy_verify()
    ok = found is not None and verify_password(form.password, found.password_hash)
    if found is None or not ok or found.account.disabled:
        # Not raised: the failure must be stored (and audited) with this transaction.
        record_login_failure(session, name=name, client=client)
        append(session, action="login_failed", user_name=name[:64], method="POST",
               path="/api/auth/token", detail={"client": client})  # fmt: skip
        detail = "the account is disabled" if found and ok and found.account.disabled else WRONG
        response = problem(
            status=401, title="Not logged in", detail=detail, instance=request.url.path
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    clear_login_failures(session, name=name)
    account = found.account
    token_text, claims = issue_token(
        user_id=account.id, version=account.token_version, settings=settings
    )
    append(session, action="login", user_id=account.id, user_name=account.name, role=account.role,
           method="POST", path="/api/auth/token", detail={"client": client})  # fmt: skip
    return JSONResponse({
        "access_token": token_text, "token_type": "bearer",
        "expires_in": settings.token_minutes * 60, "expires_at": claims.expires_at.isoformat(),
        "account": account_json(account),
    })  # fmt: skip


@router.post("/auth/logout", status_code=204, summary="Revoke this token at once")
def logout(session: SessionDep, principal: PrincipalDep) -> Response:
    revoke_token(session, jti=principal.jti, expires_at=principal.token_expires_at)
    account = principal.account
    append(session, action="logout", user_id=account.id, user_name=account.name, role=account.role,
           method="POST", path="/api/auth/logout")  # fmt: skip
    return Response(status_code=204)


@router.get("/auth/me", summary="The account of this token: role, areas, what it may do")
def me(principal: PrincipalDep) -> dict[str, Any]:
    return account_json(principal.account) | {
        "capabilities": sorted(c for c in ROLE_CAPABILITIES["admin"] if principal.can(c)),
        "token_expires_at": principal.token_expires_at.isoformat(),
    }


def account_json(account: Account) -> dict[str, Any]:
    body = asdict(account)
    body.pop("token_version")
    body["areas"] = list(account.areas)
    return body


# -- accounts (admin) -------------------------------------------------------------------------
class AccountIn(BaseModel):
    """A new account. Ids, versions and dates are the server's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: str
    areas: list[str] = Field(default_factory=list, max_length=100)
    password: str = Field(min_length=8, max_length=200)
    can_view_personal: bool = False


def _admin(principal: Principal) -> Principal:
    principal.require("manage_accounts")
    return principal


@router.get("/users", summary="Accounts (admin)")
def users(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    _admin(principal)
    return {"items": [account_json(a) for a in list_accounts(session)]}


@router.post("/users", status_code=201, summary="Create an account (admin)")
def add_user(session: SessionDep, principal: PrincipalDep, body: AccountIn) -> dict[str, Any]:
    _admin(principal)
    try:
        password_hash = hash_password(body.password)
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    account = create_account(
        session, name=body.name, role=body.role, areas=body.areas, password_hash=password_hash,
        can_view_personal=body.can_view_personal, today=local_today(),
    )  # fmt: skip
    return account_json(account)


@router.post("/users/{name}/disable", summary="Disable an account; its tokens stop at once (admin)")
def disable_user(name: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    _admin(principal)
    return account_json(disable_account(session, name=name))


# -- the audit trail (admin) ----------------------------------------------------------------
@router.get("/audit", summary="The audit trail, newest first (admin)")
def audit(
    request: Request,
    session: SessionDep,
    settings: ApiSettingsDep,
    principal: PrincipalDep,
    user: Annotated[str | None, Query(description="Account name")] = None,
    action: Annotated[
        str | None,
        Query(description="login, login_failed, logout, write, read_personal, reveal"),
    ] = None,
    object_type: Annotated[str | None, Query(description="e.g. residents, cases")] = None,
    object_id: Annotated[str | None, Query()] = None,
    since: Annotated[dt.datetime | None, Query()] = None,
    until: Annotated[dt.datetime | None, Query()] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> dict[str, Any]:
    principal.require("read_audit")
    page = page_of(settings, limit=limit, offset=offset)
    entries, matched = list_entries(
        session, page=page, user_name=user, action=action, object_type=object_type,
        object_id=object_id, since=since, until=until,
    )  # fmt: skip
    items = [asdict(e) | {"at": e.at.isoformat()} for e in entries]
    return {"items": items} | paged(request, page=page, matched=matched, returned=len(items))
