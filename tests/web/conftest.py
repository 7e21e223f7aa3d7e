"""A real ``wangge serve`` on the demo county, and Debian's Chromium driven by Playwright.

Every API call needs a token, so the web tests make their own accounts in the
demo database (``web_accounts``), log the browser in through the page's login
screen (``log_in``) and read the API with ``api_client``. ``watch_requests``
records every request a page makes; ``assert_only_service`` proves none left
for another host.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import create_engine

from tests.pii_scan import watch_log_file

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags that keep Chromium from calling home: the test asserts no request leaves the service.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_demo(demo_db_url: str, *, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the demo database with ``wangge serve`` (extra ``env`` settings);
    yield its base URL. Its log goes to a file (a pipe nobody reads would stall
    the server once full), which the suite's leak scan reads at the end
    (tests/pii_scan.py)."""
    port = free_port()
    # A signing key of the test's own: nothing is written to var/secret_key.
    full_env = os.environ | {"DATABASE_URL": demo_db_url, "WANGGE_SECRET_KEY": secrets.token_urlsafe(32)}
    full_env |= env or {}
    wangge = Path(sys.executable).with_name("wangge")
    log = log_dir / "serve.log"
    watch_log_file(log)
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(wangge), "serve", "--port", str(port)], env=full_env,
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server, log=log)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="session")
def served_demo(demo_db_url, tmp_path_factory) -> Iterator[str]:
    """Base URL of a server on the small demo county (no basemap)."""
    with serve_demo(demo_db_url, log_dir=tmp_path_factory.mktemp("served-demo")) as base:
        yield base


def _wait_ready(base: str, server: subprocess.Popen[bytes], *, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"wangge serve exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("wangge serve did not become ready in 60 s")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run scripts/install-system-deps --browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# -- accounts and logging in --------------------------------------------------------------------
WEB_PASSWORD = "web test password 7"
# name → (role, area: a code, or a township's name in the demo county 445321, or None)
WEB_ACCOUNTS: dict[str, tuple[str, str | None]] = {
    "web_admin": ("admin", None),
    "web_commander": ("commander", "新城镇"),  # a township: the map opens on its communities
    "web_logout": ("wall_viewer", "445321"),
    "web_locked": ("wall_viewer", "445321"),
}


@pytest.fixture(scope="session")
def web_accounts(demo_db_url) -> dict[str, dict[str, object]]:
    """The web tests' accounts in the demo database, made as the schema owner:
    name → {role, areas}; every one's password is WEB_PASSWORD."""
    from api.security import hash_password
    from db.accounts import replace_account
    from db.areas import child_areas
    from db.engine import session_scope
    from geo.localtime import local_today

    password_hash = hash_password(WEB_PASSWORD)
    engine = create_engine(demo_db_url)
    made: dict[str, dict[str, object]] = {}
    try:
        with session_scope(engine) as session:
            today = local_today()
            towns = {t.name: t.code for t in child_areas(session, code="445321", as_of=today)}
            for name, (role, area) in WEB_ACCOUNTS.items():
                areas = [] if area is None else [towns.get(area, area)]
                account = replace_account(session, name=name, role=role, areas=areas,
                                          password_hash=password_hash, today=today)  # fmt: skip
                made[name] = {"role": account.role, "areas": list(account.areas)}
    finally:
        engine.dispose()
    return made


def api_token(base: str, name: str, password: str = WEB_PASSWORD) -> str:
    response = httpx.post(f"{base}/api/auth/token", data={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api_client(base: str, name: str) -> httpx.Client:
    """An httpx client on the served demo, logged in as ``name``."""
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_token(base, name)}"})


def log_in(page, name: str, password: str = WEB_PASSWORD) -> None:
    """Log in through the page's login screen and wait until the page says so."""
    page.locator("#login").wait_for(state="visible", timeout=15_000)
    page.fill("#login-username", name)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_function("document.body.dataset.auth === 'in'", timeout=15_000)


def watch_requests(page) -> list:
    """Every request the page makes from now on (Playwright Request objects)."""
    requested: list = []
    page.on("request", lambda request: requested.append(request))
    return requested


def assert_only_service(requested: list, base: str) -> None:
    """Not one request went to a host other than the service."""
    hosts = {urlsplit(r.url).netloc for r in requested if not r.url.startswith("data:")}
    assert hosts == {urlsplit(base).netloc}, hosts
