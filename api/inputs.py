"""Refuse NUL characters at the door.

PostgreSQL cannot store a NUL (U+0000) in text, so a NUL anywhere in a
request's path, query or text body (JSON, form) can only end in an error
deep inside a query — or, worse, in the audit row of the request. This ASGI
middleware answers such a request at once with a 422 that says so; file
uploads (multipart) are left to their parsers, which read them as files.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TEXT_BODIES = (b"application/json", b"application/x-www-form-urlencoded", b"application/geo+json")
_NUL_MARKS = (b"\x00", b"%00", b"\\u0000")


class RefuseNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_target(scope)
        body_chunks: list[Message] = []
        if where is None and _text_body(scope):
            body_chunks, body = await _read_body(receive)
            if any(mark in body for mark in _NUL_MARKS):
                where = "the body"
        if where is not None:
            await _refuse(scope, send, where=where)
            return
        if body_chunks:
            replay = iter(body_chunks)

            async def receive_again() -> Message:
                return next(replay, {"type": "http.request", "body": b"", "more_body": False})

            await self.app(scope, receive_again, send)
        else:
            await self.app(scope, receive, send)


def _nul_in_target(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("raw_path", b"").lower():
        return "the path"
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "the query"
    return None


def _text_body(scope: Scope) -> bool:
    content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
    return any(content_type.startswith(kind) for kind in _TEXT_BODIES)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes]:
    chunks: list[Message] = []
    while True:
        message = await receive()
        chunks.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return chunks, b"".join(m.get("body", b"") for m in chunks)


async def _refuse(scope: Scope, send: Send, *, where: str) -> None:
    body = json.dumps({
        "type": "about:blank", "title": "Invalid input", "status": 422,
        "detail": f"{where} holds a NUL character (U+0000), which no field may contain",
        "instance": scope.get("path", ""),
    }).encode()  # fmt: skip
    await send({
        "type": "http.response.start", "status": 422,
        "headers": [(b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
