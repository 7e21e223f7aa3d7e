"""A pytest plugin that fails the run if any response body or log line of the
whole test suite carries an unmasked ID number or mobile phone number.

What is scanned:
* every HTTP response any test receives through httpx (FastAPI's TestClient,
  and the httpx clients that talk to servers the tests start) — its text,
  when it is text (JSON, GeoJSON, HTML, CSV, plain);
* every log record emitted in the test process;
* the log files of servers the tests start, registered with
  :func:`watch_log_file`.

What counts: 18 characters that form a valid GB 11643 ID number (17 digits
and a check character that matches them), and 11-digit mainland mobile
numbers, each standing alone (not inside a longer run of digits). Masked
values (``4453**********1234``, ``138****5678``) do not match.

Allowed: the explicit, audited reveal (``POST /api/residents/{id}/reveal``)
and the rejected-rows files, which go back to the office that sent the rows.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx])(?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
ALLOWED_PATHS = (re.compile(r"/api/residents/\d+/reveal$"), re.compile(r"/rejected\.(csv|xlsx)$"))
TEXT_TYPES = ("json", "text/", "csv", "html", "xml")
_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))


def is_id_number(candidate: str) -> bool:
    """A valid GB 11643 number: the check character matches the first 17 digits."""
    total = sum(w * int(c) for w, c in zip(_WEIGHTS, candidate[:17], strict=True))
    return "10X98765432"[total % 11] == candidate[17].upper()


def raw_leaks(text: str) -> list[str]:
    """The unmasked ID and mobile numbers in ``text``, as they are."""
    found = [m for m in ID_NUMBER.findall(text) if is_id_number(m)]
    return found + MOBILE.findall(text)


def leaks(text: str, *, echoed: str = "") -> list[str]:
    """The unmasked ID and mobile numbers in ``text`` that are not in
    ``echoed`` (the request's own URL and body: an answer that repeats what
    the caller sent, e.g. "no resident with id 14667770874", discloses
    nothing stored), masked for the report."""
    return [f"{v[:3]}…{v[-2:]}" for v in raw_leaks(text) if v not in echoed]


@dataclass
class Leak:
    where: str
    values: list[str]


LEAKS: list[Leak] = []
_LOG_FILES: list[Path] = []


def watch_log_file(path: Path) -> None:
    """Scan this file (a server's log) at the end of the run."""
    _LOG_FILES.append(path)


class _LeakHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # a broken record is not ours to judge
            return
        if found := leaks(message):
            LEAKS.append(Leak(where=f"log {record.name}: {message[:120]}", values=found))


def _scan_response(response: httpx.Response) -> None:
    path = response.request.url.path
    if any(p.search(path) for p in ALLOWED_PATHS):
        return
    content_type = response.headers.get("content-type", "")
    if not any(t in content_type for t in TEXT_TYPES):
        return
    try:
        body = response.read().decode("utf-8", errors="replace")
    except (httpx.StreamError, httpx.ResponseNotRead):
        return
    request = response.request
    try:
        sent = request.content.decode("utf-8", errors="replace")
    except httpx.RequestNotRead:
        sent = ""
    echoed = str(request.url) + "\n" + unquote(str(request.url)) + "\n" + sent
    if found := leaks(body, echoed=echoed):
        LEAKS.append(Leak(where=f"{request.method} {path} → {response.status_code}", values=found))


_original_send = httpx.Client.send


def _send(self: httpx.Client, request: httpx.Request, **kwargs: object) -> httpx.Response:
    response = _original_send(self, request, **kwargs)  # type: ignore[arg-type]
    if not kwargs.get("stream"):
        _scan_response(response)
    return response


def pytest_sessionstart(session: pytest.Session) -> None:
    httpx.Client.send = _send  # type: ignore[method-assign]
    handler = _LeakHandler(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().addHandler(handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for path in _LOG_FILES:
        if path.exists():
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if found := leaks(line):
                    LEAKS.append(Leak(where=f"{path.name}:{number}", values=found))
    if LEAKS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"{len(LEAKS)} unmasked ID or phone numbers", red=True)
            for leak in LEAKS[:50]:
                reporter.write_line(f"{leak.where}: {', '.join(leak.values)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
