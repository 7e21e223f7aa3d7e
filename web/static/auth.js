// Logging in, shared by every Wangge page (first map, wall map, editor, phone view).
//
// The token lives in sessionStorage, never localStorage: command-centre PCs are
// shared, and closing the tab must end the session. Every API call goes through
// WanggeAuth.fetch, which sends "Authorization: Bearer <token>"; a 401 from any
// call forgets the token and brings back the login screen with the server's reason.
//
// A page uses it like this:
//   WanggeAuth.start({
//     onLogin(account) { ...load the page's data with WanggeAuth.getJSON(url)... },
//     onLogout(reason) { ...drop everything shown (personal data must not linger)... },
//   });
// The page may hold <span id="account"></span> where the account and the
// 退出 Logout button go; the login screen is built here.
(function () {
  "use strict";
  const KEY = "wangge.session"; // {access_token, expires_at, account}
  const ROLE_ZH = {
    admin: "管理员", commander: "指挥长", grid_leader: "网格长", grid_worker: "网格员", wall_viewer: "大屏",
  };

  let options = { onLogin() {}, onLogout() {} };
  let signedIn = false;
  let expiryTimer = null;

  /** Raised by WanggeAuth.fetch on a 401 (the login screen is already showing). */
  class AuthError extends Error {
    constructor(message) { super(message); this.name = "AuthError"; this.unauthorized = true; }
  }
  /** Any other API error: status and the server's problem+json detail. */
  class ApiError extends Error {
    constructor(message, status, body) { super(message); this.name = "ApiError"; this.status = status; this.body = body; }
  }

  // -- the stored session ---------------------------------------------------------------------
  function stored() {
    try {
      const session = JSON.parse(sessionStorage.getItem(KEY) || "null");
      if (!session || !session.access_token) return null;
      if (session.expires_at && Date.parse(session.expires_at) <= Date.now()) {
        sessionStorage.removeItem(KEY);
        return null;
      }
      return session;
    } catch (err) {
      sessionStorage.removeItem(KEY);
      return null;
    }
  }
  function token() { const s = stored(); return s ? s.access_token : null; }
  function account() { const s = stored(); return s ? s.account : null; }
  function remember(session) { sessionStorage.setItem(KEY, JSON.stringify(session)); }
  function forget() {
    sessionStorage.removeItem(KEY);
    if (expiryTimer) { clearTimeout(expiryTimer); expiryTimer = null; }
  }

  async function problemDetail(response) {
    try {
      const body = await response.clone().json();
      return { body, detail: body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText };
    } catch (err) {
      return { body: null, detail: response.statusText || `HTTP ${response.status}` };
    }
  }

  // -- API calls ------------------------------------------------------------------------------
  /** fetch() with the bearer token; a 401 signs out and throws AuthError. */
  async function authFetch(url, init) {
    const current = token();
    if (!current) {
      signOut("请先登录 · Please log in");
      throw new AuthError("not logged in");
    }
    const headers = new Headers((init && init.headers) || {});
    headers.set("Authorization", `Bearer ${current}`);
    const response = await fetch(url, Object.assign({}, init, { headers }));
    if (response.status === 401) {
      const { detail } = await problemDetail(response);
      // A late answer for a token already replaced must not sign the new one out.
      if (token() === current) signOut(`登录已失效 · Signed out: ${detail}`);
      throw new AuthError(detail);
    }
    return response;
  }

  /** GET (or any init) a JSON body; non-2xx throws ApiError with the server's detail. */
  async function getJSON(url, init) {
    const response = await authFetch(url, Object.assign({ headers: { Accept: "application/geo+json, application/json" } }, init));
    if (response.status === 204) return null;
    const { body, detail } = await problemDetail(response);
    if (!response.ok) throw new ApiError(detail, response.status, body);
    return body;
  }

  /** POST the OAuth2 password form; resolves to the account, throws ApiError with the reason. */
  async function login(username, password) {
    let response;
    try {
      response = await fetch("/api/auth/token", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: new URLSearchParams({ username, password }),
      });
    } catch (err) {
      throw new ApiError("无法连接服务器 · Cannot reach the server", 0, null);
    }
    const { body, detail } = await problemDetail(response);
    if (!response.ok) {
      let zh = "登录失败 · Login failed";
      if (response.status === 429) {
        const wait = response.headers.get("Retry-After");
        zh = `账户已锁定 · Locked${wait ? ` (${wait} s)` : ""}`;
      }
      throw new ApiError(`${zh}: ${detail}`, response.status, body);
    }
    remember({ access_token: body.access_token, expires_at: body.expires_at, account: body.account });
    return body.account;
  }

  /** Revoke the token on the server, then forget it here whatever the answer. */
  async function logout() {
    const current = token();
    if (current) {
      try {
        await fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${current}` } });
      } catch (err) { /* the token is forgotten here anyway */ }
    }
    signOut("已退出 · Logged out");
    // The next person at a shared PC starts from an empty form.
    const name = document.getElementById("login-username");
    if (name) { name.value = ""; name.focus(); }
  }

  // -- the login screen and the account badge ---------------------------------------------------
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  function loginScreen() {
    let screen = document.getElementById("login");
    if (screen) return screen;
    const message = el("p", { id: "login-message", role: "alert" });
    const form = el("form", { id: "login-form", method: "post", action: "/api/auth/token", autocomplete: "on" }, [
      el("h1", { text: "网格 · Wangge" }),
      el("label", { for: "login-username" }, [el("span", { text: "用户名" }), el("small", { text: "Username" })]),
      el("input", { id: "login-username", name: "username", type: "text", autocomplete: "username", required: "", autocapitalize: "off", spellcheck: "false" }),
      el("label", { for: "login-password" }, [el("span", { text: "密码" }), el("small", { text: "Password" })]),
      el("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: "" }),
      message,
      el("button", { id: "login-submit", type: "submit" }, [el("span", { text: "登录" }), el("small", { text: " Log in" })]),
    ]);
    screen = el("div", { id: "login", role: "dialog", "aria-modal": "true", "aria-label": "登录 Log in", hidden: "" }, [form]);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = document.getElementById("login-submit");
      const password = document.getElementById("login-password");
      button.disabled = true;
      message.textContent = "登录中… · Logging in…";
      message.className = "";
      try {
        const who = await login(document.getElementById("login-username").value.trim(), password.value);
        password.value = "";
        signIn(who);
      } catch (err) {
        message.textContent = err.message;
        message.className = "error";
        password.select();
      } finally {
        button.disabled = false;
      }
    });
    document.body.appendChild(screen);
    return screen;
  }

  function badge() {
    const slot = options.badge || document.getElementById("account");
    if (!slot) return;
    slot.innerHTML = "";
    const who = account();
    if (!who) return;
    slot.appendChild(el("span", { id: "account-name", text: who.name }));
    slot.appendChild(el("span", { id: "account-role", title: who.role, text: `${ROLE_ZH[who.role] || who.role} ${who.role}` }));
    const button = el("button", { id: "logout", type: "button" }, [el("span", { text: "退出" }), el("small", { text: " Logout" })]);
    button.addEventListener("click", () => { button.disabled = true; logout(); });
    slot.appendChild(button);
  }

  function showLogin(reason) {
    const screen = loginScreen();
    const message = document.getElementById("login-message");
    message.textContent = reason || "";
    message.className = reason ? "notice" : "";
    screen.hidden = false;
    document.body.dataset.auth = "out";
    document.getElementById("login-username").focus();
  }

  function signIn(who) {
    signedIn = true;
    loginScreen().hidden = true;
    document.body.dataset.auth = "in";
    badge();
    const session = stored();
    if (expiryTimer) clearTimeout(expiryTimer);
    if (session && session.expires_at) {
      const ms = Date.parse(session.expires_at) - Date.now();
      if (ms > 0 && ms < 2 ** 31) expiryTimer = setTimeout(() => signOut("登录已过期 · Session expired: please log in again"), ms);
    }
    options.onLogin(who);
  }

  function signOut(reason) {
    forget();
    const was = signedIn;
    signedIn = false;
    badge();
    showLogin(reason);
    if (was) options.onLogout(reason);
  }

  /** Mount the login screen; with a stored token, check it (/api/auth/me) first. */
  async function start(pageOptions) {
    options = Object.assign({ onLogin() {}, onLogout() {} }, pageOptions);
    loginScreen();
    if (!token()) { showLogin(""); return; }
    document.body.dataset.auth = "checking";
    try {
      const me = await getJSON("/api/auth/me");
      const session = stored();
      if (!session) return; // signed out meanwhile
      session.account = me;
      remember(session);
      signIn(me);
    } catch (err) {
      if (err.unauthorized) return;
      // No connection (a phone in a stairwell, a page opened from the offline cache):
      // keep the stored, unexpired session; the server checks the token on the next call.
      const session = stored();
      if (err instanceof TypeError && session && session.account) { signIn(session.account); return; }
      signOut(`无法确认登录 · Could not check the login: ${err.message}`);
    }
  }

  window.WanggeAuth = {
    start, login, logout, fetch: authFetch, getJSON, token, account,
    roleLabel: (role) => `${ROLE_ZH[role] || role} ${role}`,
    AuthError, ApiError,
  };
})();
