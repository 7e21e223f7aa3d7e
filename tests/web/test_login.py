"""The login screen in real headless Chromium: nothing is shown or asked of
the API before login, the server's reason is shown when a login fails, the
token lives in sessionStorage only, every call carries it, a 401 brings the
login screen back, and logout revokes the token on the server."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.conftest import WEB_PASSWORD, assert_only_service, log_in, watch_requests

pytestmark = pytest.mark.browser

SESSION_KEY = "wangge.session"


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    return context, context.new_page()


def stored_token(page) -> str | None:
    return page.evaluate(
        "k => { const s = JSON.parse(sessionStorage.getItem(k) || 'null'); return s && s.access_token; }",
        SESSION_KEY,
    )


def path_of(request) -> str:
    return urlsplit(request.url).path


def wait_for_map(page, *, level: str, parent: str) -> int:
    page.wait_for_function(
        "([level, parent]) => document.body.dataset.level === level && document.body.dataset.parent === parent",
        arg=[level, parent],
        timeout=15_000,
    )
    return int(page.evaluate("document.body.dataset.features"))


def login_message(page) -> str:
    page.wait_for_function(
        "document.getElementById('login-message').textContent.trim() !== ''", timeout=15_000
    )
    return page.locator("#login-message").inner_text()


def test_login_screen_without_token_and_no_data_before_login(
    served_demo, web_accounts, browser, artifacts_dir
) -> None:
    base = served_demo
    context, page = new_page(browser)
    requested = watch_requests(page)

    page.goto(base + "/")
    page.locator("#login").wait_for(state="visible", timeout=15_000)
    page.wait_for_load_state("networkidle")
    form = page.locator("#login-form").inner_text()
    for words in ("用户名", "Username", "密码", "Password", "登录", "Log in"):
        assert words in form
    assert page.locator("#login-form").get_attribute("action") == "/api/auth/token"
    assert page.locator("#login-password").get_attribute("type") == "password"
    assert page.evaluate("document.body.dataset.auth") == "out"
    assert page.locator("path.leaflet-interactive").count() == 0
    assert page.locator("#account").inner_text() == ""
    page.screenshot(path=str(artifacts_dir / "login-screen.png"))

    # Without a token the page asks the API for nothing; the map's API least of all.
    api_calls = [r for r in requested if path_of(r).startswith("/api/")]
    assert api_calls == [], [r.url for r in api_calls]
    assert stored_token(page) is None

    log_in(page, "web_admin")
    assert wait_for_map(page, level="township", parent="445321") == 12
    area_calls = [r for r in requested if path_of(r).startswith("/api/areas")]
    assert area_calls
    for request in area_calls:  # every map call came after the token, with it
        assert request.all_headers().get("authorization", "").startswith("Bearer "), request.url
    assert_only_service(requested, base)
    context.close()


def test_wrong_password_shows_the_servers_reason(
    served_demo, web_accounts, browser, artifacts_dir
) -> None:
    base = served_demo
    context, page = new_page(browser)
    requested = watch_requests(page)
    page.goto(base + "/")
    page.locator("#login").wait_for(state="visible", timeout=15_000)

    page.fill("#login-username", "web_admin")
    page.fill("#login-password", "not the password")
    page.click("#login-submit")
    page.wait_for_function(
        "document.getElementById('login-message').classList.contains('error')", timeout=15_000
    )
    message = page.locator("#login-message").inner_text()
    assert "wrong name or password" in message and "登录失败" in message, message
    assert page.locator("#login").is_visible()
    assert stored_token(page) is None
    assert not any(path_of(r).startswith("/api/areas") for r in requested)
    page.screenshot(path=str(artifacts_dir / "login-wrong-password.png"))

    # The right password then works (and clears the failure count).
    log_in(page, "web_admin")
    assert page.locator("#account-name").inner_text() == "web_admin"
    assert_only_service(requested, base)
    context.close()


def test_locked_account_shows_the_lock_and_the_wait(
    served_demo, web_accounts, browser, artifacts_dir
) -> None:
    base = served_demo
    for _ in range(5):
        response = httpx.post(
            f"{base}/api/auth/token", data={"username": "web_locked", "password": "wrong guess"}
        )
        assert response.status_code == 401
    context, page = new_page(browser)
    requested = watch_requests(page)
    page.goto(base + "/")
    page.locator("#login").wait_for(state="visible", timeout=15_000)
    page.fill("#login-username", "web_locked")
    page.fill("#login-password", WEB_PASSWORD)  # even the right password is refused while locked
    page.click("#login-submit")
    page.wait_for_function(
        "document.getElementById('login-message').classList.contains('error')", timeout=15_000
    )
    message = page.locator("#login-message").inner_text()
    assert "账户已锁定" in message and "account locked" in message and "try again in" in message, (
        message
    )
    assert stored_token(page) is None
    page.screenshot(path=str(artifacts_dir / "login-locked.png"))
    assert_only_service(requested, base)
    context.close()


def test_login_shows_the_accounts_own_area_and_the_account(
    served_demo, web_accounts, browser, artifacts_dir
) -> None:
    base = served_demo
    town = web_accounts["web_commander"]["areas"][0]
    context, page = new_page(browser)
    requested = watch_requests(page)
    page.goto(base + "/")
    log_in(page, "web_commander")

    # A commander of a township opens on that township's communities; it is the top crumb.
    communities = wait_for_map(page, level="community", parent=town)
    assert communities > 0
    assert page.locator("path.leaflet-interactive").count() == communities
    assert page.locator("#crumbs a").all_inner_texts() == ["新城镇"]
    assert page.locator("#login").is_hidden()
    assert page.locator("#account-name").inner_text() == "web_commander"
    role = page.locator("#account-role").inner_text()
    assert "指挥长" in role and "commander" in role
    logout = page.locator("#logout").inner_text()
    assert "退出" in logout and "Logout" in logout
    page.screenshot(path=str(artifacts_dir / "login-commander-map.png"))

    # The token is in sessionStorage (a shared PC: closing the tab ends it), never localStorage.
    token = stored_token(page)
    assert token
    assert page.evaluate("localStorage.length") == 0
    me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "web_commander"

    # Every API call but the login itself carried the token.
    api_calls = [
        r for r in requested if path_of(r).startswith("/api/") and path_of(r) != "/api/auth/token"
    ]
    assert any(path_of(r).startswith("/api/areas") for r in api_calls)
    for request in api_calls:
        assert request.all_headers().get("authorization") == f"Bearer {token}", request.url

    # A reload in the same tab keeps the session; a new tab (context) starts at the login screen.
    page.reload()
    assert wait_for_map(page, level="community", parent=town) == communities
    assert page.locator("#login").is_hidden()
    other = browser.new_context()
    other_page = other.new_page()
    other_page.goto(base + "/")
    other_page.locator("#login").wait_for(state="visible", timeout=15_000)
    other.close()
    assert_only_service(requested, base)
    context.close()


def test_logout_returns_to_login_and_revokes_the_token(
    served_demo, web_accounts, browser, artifacts_dir
) -> None:
    base = served_demo
    context, page = new_page(browser)
    requested = watch_requests(page)
    page.goto(base + "/")
    log_in(page, "web_logout")
    wait_for_map(page, level="township", parent="445321")
    token = stored_token(page)
    assert token

    page.click("#logout")
    page.locator("#login").wait_for(state="visible", timeout=15_000)
    assert "已退出" in login_message(page)
    assert stored_token(page) is None
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("#account").inner_text() == ""
    # Nothing of the map stays behind the login screen.
    assert page.locator("path.leaflet-interactive").count() == 0
    assert page.locator("#crumbs a").count() == 0
    page.screenshot(path=str(artifacts_dir / "login-after-logout.png"))

    logout_calls = [r for r in requested if path_of(r) == "/api/auth/logout"]
    assert len(logout_calls) == 1
    assert logout_calls[0].all_headers().get("authorization") == f"Bearer {token}"
    assert logout_calls[0].response().status == 204
    me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401, me.text
    assert "revoked" in me.json()["detail"]
    assert_only_service(requested, base)
    context.close()


def test_a_401_from_any_call_returns_to_login_with_the_reason(
    served_demo, web_accounts, browser, artifacts_dir
) -> None:
    base = served_demo
    context, page = new_page(browser)
    requested = watch_requests(page)
    page.goto(base + "/")

    # A call while the page is open: the token was revoked elsewhere.
    log_in(page, "web_admin")
    wait_for_map(page, level="township", parent="445321")
    token = stored_token(page)
    assert (
        httpx.post(
            f"{base}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 204
    )
    failed = page.evaluate(
        "WanggeAuth.getJSON('/api/auth/me').then(() => 'answered', e => e.unauthorized === true)"
    )
    assert failed is True
    page.locator("#login").wait_for(state="visible", timeout=15_000)
    message = login_message(page)
    assert "登录已失效" in message and "revoked" in message, message
    assert stored_token(page) is None
    assert page.locator("path.leaflet-interactive").count() == 0
    page.screenshot(path=str(artifacts_dir / "login-token-revoked.png"))

    # The page opened again with a token that no longer works.
    log_in(page, "web_admin")
    wait_for_map(page, level="township", parent="445321")
    token = stored_token(page)
    assert (
        httpx.post(
            f"{base}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 204
    )
    page.reload()
    page.locator("#login").wait_for(state="visible", timeout=15_000)
    assert "revoked" in login_message(page)
    assert page.locator("path.leaflet-interactive").count() == 0
    assert_only_service(requested, base)
    context.close()
