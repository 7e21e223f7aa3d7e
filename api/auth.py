"""Who is asking, and what they may do: the principal of every request.

Every endpoint but ``/api/health`` and ``/api/auth/token`` depends on
:data:`PrincipalDep`: a valid, unrevoked token of an enabled account, within
its request rate. Roles grant *capabilities*; scopes (area subtrees) decide
which objects exist for the caller. An object outside the scope is answered
exactly as a missing one (404, same words), so nobody learns what lies
outside their areas.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.security import TokenError, read_token
from api.settings import AuthSettings
from db.access import (
    Scope,
    area_in_scope,
    checkpoint_in_scope,
    object_in_scope,
    round_in_scope,
)
from db.accounts import Account, token_state
from geo.errors import Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthenticated

# Capabilities of each role. A commander reads personal data only when the
# account allows it (``can_view_personal``); a wall viewer never does.
ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "read_aggregates", "read_personal", "reveal", "record_visits", "record_passages",
        "manage_cases", "manage_checkpoints", "manage_rounds", "import_registry",
        "import_boundaries", "resolve_review", "edit_microgrids", "manage_accounts", "read_audit",
    }),
    "commander": frozenset({
        "read_aggregates", "record_passages", "manage_cases", "manage_checkpoints",
        "manage_rounds", "import_registry", "resolve_review",
    }),
    "grid_leader": frozenset({
        "read_aggregates", "read_personal", "reveal", "record_visits", "record_passages",
        "manage_cases", "resolve_review", "edit_microgrids",
    }),
    "grid_worker": frozenset({
        "read_aggregates", "read_personal", "reveal", "record_visits", "record_passages",
    }),
    "wall_viewer": frozenset({"read_aggregates"}),
}  # fmt: skip
PERSONAL_CAPABILITIES = frozenset({"read_personal", "reveal"})

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


@lru_cache(maxsize=1)
def get_auth_settings() -> AuthSettings:
    return AuthSettings()


AuthSettingsDep = Annotated[AuthSettings, Depends(get_auth_settings)]


@dataclass(frozen=True)
class Principal:
    """The account behind a request, its scope and its token's id."""

    account: Account
    scope: Scope
    jti: str
    token_expires_at: dt.datetime

    def can(self, capability: str) -> bool:
        allowed = ROLE_CAPABILITIES[self.account.role]
        if capability in PERSONAL_CAPABILITIES and self.account.role == "commander":
            return self.account.can_view_personal
        return capability in allowed

    def require(self, capability: str) -> None:
        """``Forbidden`` (403) unless the role has ``capability``."""
        if not self.can(capability):
            raise Forbidden(f"a {self.account.role} account may not {capability.replace('_', ' ')}")


class RateLimiter:
    """At most ``per_minute`` requests per account in any 60 s (this process)."""

    def __init__(self) -> None:
        self._seen: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, *, account_id: int, per_minute: int) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(account_id, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= per_minute:
                retry = max(1, int(60 - (now - seen[0])) + 1)
                raise TooManyRequests(
                    f"rate limit: {per_minute} requests per minute per account; "
                    f"try again in {retry} s",
                    retry_after_s=retry,
                )
            seen.append(now)


RATE_LIMITER = RateLimiter()


def current_principal(
    request: Request,
    session: SessionDep,
    settings: AuthSettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The principal of the request; ``Unauthenticated`` (401) without a valid token."""
    if not token:
        raise Unauthenticated(
            "log in first: send Authorization: Bearer <token> from /api/auth/token"
        )
    try:
        claims = read_token(token, settings=settings)
    except TokenError as error:
        raise Unauthenticated(str(error)) from None
    state = token_state(session, user_id=claims.user_id, jti=claims.jti)
    if state is None:
        raise Unauthenticated("the token's account no longer exists")
    account, revoked = state
    if account.disabled:
        raise Unauthenticated("the account is disabled")
    if revoked or account.token_version != claims.version:
        raise Unauthenticated("the token was revoked: log in again")
    RATE_LIMITER.check(account_id=account.id, per_minute=settings.requests_per_minute)
    principal = Principal(
        account=account, scope=Scope.of(role=account.role, areas=account.areas),
        jti=claims.jti, token_expires_at=claims.expires_at,
    )  # fmt: skip
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


# -- scope ------------------------------------------------------------------------------------
def scoped_within(
    session: Session, principal: Principal, *, within: str | None, as_of: dt.date
) -> str | None:
    """The ``within`` a list is filtered to: the one asked for when it is in
    scope (404, as for a missing area, when not); when none is asked for, the
    account's single area (None for an admin: everything). An account with
    several areas must say which."""
    if within is None:
        if principal.scope.everything:
            return None
        if len(principal.scope.roots) == 1:
            return principal.scope.roots[0]
        if not principal.scope.roots:
            raise NotFound("this account has no areas: there is nothing to show")
        raise InvalidInput(
            f"give within=: one of your areas {', '.join(principal.scope.roots)} or an area inside them"
        )
    if not area_in_scope(session, code=within, scope=principal.scope, as_of=as_of):
        raise NotFound(f"no area with code {within!r} on {as_of.isoformat()}")
    return within


def require_area_in_scope(
    session: Session, principal: Principal, *, code: str, as_of: dt.date
) -> None:
    if not area_in_scope(session, code=code, scope=principal.scope, as_of=as_of):
        raise NotFound(f"no area with code {code!r} on {as_of.isoformat()}")


def require_object_in_scope(
    session: Session, principal: Principal, *, kind: str, object_id: int, noun: str,
    as_of: dt.date,
) -> None:  # fmt: skip
    """404 with the words a missing object gets, unless the object lives in scope.
    ``kind``: household, resident, case, visit, review, checkpoint or round."""
    if kind == "checkpoint":
        found = checkpoint_in_scope(
            session, checkpoint_id=object_id, scope=principal.scope, as_of=as_of
        )
    elif kind == "round":
        found = round_in_scope(session, round_id=object_id, scope=principal.scope, as_of=as_of)
    else:
        found = object_in_scope(
            session, kind=kind, object_id=object_id, scope=principal.scope, as_of=as_of
        )
    if not found:
        raise NotFound(f"no {noun} with id {object_id}")
