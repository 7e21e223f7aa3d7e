"""Support for the schemathesis run (tests/api/test_schemathesis.py): the
fuzzing database and app, the guard that keeps the fuzzer from locking
itself out, and the log of what it found.

The fuzz test never raises inside Hypothesis: every server error and every
failed check is written to a :class:`FindingLog` (the first request that
showed it, with its traceback or the check's message, and how often it
happened), so one broken endpoint does not hide the others; a final test
fails when the log holds anything that is not a known, reproduced bug.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from api.auth import get_auth_settings
from api.deps import get_engine
from api.security import hash_password
from api.settings import AuthSettings
from db.accounts import replace_account
from db.demo import load_demo
from db.engine import engine_for, session_scope
from geo.localtime import local_today

REPO_ROOT = Path(__file__).resolve().parents[2]
COUNTY = "445321"
PASSWORD = "fuzz-password-1234"

# Accounts of the fuzz database. The fuzzer works as the first three; the
# last two exist so that the endpoints that end a session or an account can
# be fuzzed without ending the fuzzer's own.
ADMIN = "fuzz_admin"
GRID_WORKER = "fuzz_worker"
WALL_VIEWER = "fuzz_wall"
VICTIM = "fuzz_victim"  # what POST /api/users/{name}/disable may disable
LOGOUT = "fuzz_logout"  # logs in afresh for every POST /api/auth/logout
PROTECTED = frozenset({ADMIN, GRID_WORKER, WALL_VIEWER, LOGOUT})


@dataclass(frozen=True)
class FuzzEnv:
    url: str
    app: FastAPI
    tokens: dict[str, str]  # account name → bearer token

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def fresh_token(self, name: str) -> str:
        with TestClient(self.app) as client:
            return login(client, name)


def login(client: TestClient, name: str, password: str = PASSWORD) -> str:
    response = client.post("/api/auth/token", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def fuzz_app() -> FastAPI:
    """The app as served, but with a per-account rate limit high enough that
    the run is not answered with 429s. Its database comes with
    :func:`build_fuzz_env` (no request reaches one before)."""
    app = create_app()
    app.dependency_overrides[get_auth_settings] = lambda: AuthSettings(
        requests_per_minute=1_000_000
    )
    return app


def build_fuzz_env(url: str, app: FastAPI) -> FuzzEnv:
    """Load the small demo into ``url`` (as the schema's owner), make the
    fuzzer's accounts, and point ``app`` at ``url`` as served: requests work
    as the request role (``engine_for``), like ``wangge serve``."""
    owner = create_engine(url)
    try:
        load_demo(owner, county_code=COUNTY, households=300, seed=5)
        password_hash = hash_password(PASSWORD)
        today = local_today()
        with session_scope(owner) as session:
            # The busiest micro-grid (a 300-household demo has too few grids
            # with two micro-grids for db.accounts.demo_scopes).
            microgrid = session.execute(text(
                "SELECT microgrid_code FROM household WHERE microgrid_code IS NOT NULL"
                " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
            )).scalar_one()  # fmt: skip
            for name, role, areas in (
                (ADMIN, "admin", []),
                (VICTIM, "admin", []),
                (LOGOUT, "admin", []),
                (GRID_WORKER, "grid_worker", [microgrid]),
                (WALL_VIEWER, "wall_viewer", [COUNTY]),
            ):
                replace_account(session, name=name, role=role, areas=areas,
                                password_hash=password_hash, today=today)  # fmt: skip
    finally:
        owner.dispose()
    app.dependency_overrides[get_engine] = lambda: engine_for(url)
    with TestClient(app) as client:
        tokens = {name: login(client, name) for name in (ADMIN, GRID_WORKER, WALL_VIEWER)}
    return FuzzEnv(url=url, app=app, tokens=tokens)


# -- keeping the fuzzer logged in -------------------------------------------------------------
def guard(case: Any) -> None:
    """Point the requests that would end the fuzzer's own access elsewhere:
    disabling one of its accounts (a name the fuzzer may have read from
    GET /api/users) disables the throwaway account instead, and a login
    with a wrong password for one of them (five lock it) uses another name."""
    path = case.operation.path
    names = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    if path == "/api/users/{name}/disable" and str(names.get("name", "")).strip() in PROTECTED:
        names["name"] = VICTIM
    body = case.body if isinstance(case.body, dict) else {}
    if path == "/api/auth/token" and str(body.get("username", "")).strip() in PROTECTED:
        body["username"] = "fuzz_nobody"


# -- what the fuzzer found ----------------------------------------------------------------------
@dataclass
class Finding:
    operation: str  # "GET /api/areas/{code}"
    kind: str  # "server error" or the failed check's title
    account: str
    request: str  # the first request that showed it
    detail: str  # the traceback, or the check's message
    count: int = 1

    def report(self) -> str:
        return (
            f"--- {self.operation}: {self.kind} (as {self.account}; {self.count}x)\n"
            f"request: {self.request}\n{self.detail.rstrip()}\n"
        )


@dataclass
class FindingLog:
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    requests: int = 0
    # (account, phase, status) → responses
    statuses: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def count(self, case: Any, account: str, status: int) -> None:
        self.requests += 1
        phase = case.meta.phase.name.value if case.meta is not None else "?"
        key = (account, str(phase), status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def summary(self) -> str:
        return f"{self.requests} requests; (account, phase, status) → count: " + ", ".join(
            f"{a}/{p}/{s}: {n}" for (a, p, s), n in sorted(self.statuses.items())
        )

    def add(self, case: Any, *, kind: str, account: str, detail: str) -> None:
        key = (case.operation.label, kind)
        if key in self.findings:
            self.findings[key].count += 1
            return
        self.findings[key] = Finding(
            operation=case.operation.label, kind=kind, account=account,
            request=describe_request(case), detail=detail,
        )  # fmt: skip

    def server_error(self, case: Any, *, account: str, error: BaseException) -> None:
        self.count(case, account, 500)
        self.add(case, kind=f"server error ({type(error).__name__})", account=account,
                 detail=project_traceback(error))  # fmt: skip

    def explained_by(self, known: list[KnownBug]) -> dict[str, list[Finding]]:
        """Known bug name → the findings it explains ("" → those none explains)."""
        out: dict[str, list[Finding]] = {}
        for finding in self.findings.values():
            bug = next((b.name for b in known if b.matches(finding)), "")
            out.setdefault(bug, []).append(finding)
        return out


@dataclass(frozen=True)
class KnownBug:
    """A bug the fuzzer finds that is reported and has a reproducer; its
    findings do not fail the run (every other finding does)."""

    name: str
    matches: Callable[[Finding], bool]


def project_traceback(error: BaseException) -> str:
    """The frames of the application's code (api/, db/, geo/) of each
    exception of the chain, innermost first, with each exception's message."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    parts = []
    for exc in reversed(chain):
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__)
            if any(f.filename.startswith(str(REPO_ROOT / d) + "/") for d in ("api", "db", "geo"))
        ]  # fmt: skip
        parts.append("".join(traceback.format_list(frames)))
        parts.append(_head("".join(traceback.format_exception_only(exc)), 2500))
    return "".join(parts)


def sent_text(case: Any) -> str:
    """Everything the request carried, unabridged (for telling echoed input apart)."""
    return json.dumps([case.formatted_path, case.query, case.headers,
                       None if _is_unset(case.body) else case.body],
                      ensure_ascii=False, default=repr)  # fmt: skip


def describe_request(case: Any) -> str:
    parts = [f"{case.method.upper()} {case.formatted_path}"]
    if case.query:
        parts.append(f"query={_short(case.query)}")
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if headers:
        parts.append(f"headers={_short(headers)}")
    if not _is_unset(case.body):
        parts.append(f"body({case.media_type})={_short(case.body)}")
    return " ".join(parts)


def _is_unset(body: Any) -> bool:
    return body is None or type(body).__name__ == "NotSet"


def _short(value: Any, limit: int = 600) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _head(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…\n"
