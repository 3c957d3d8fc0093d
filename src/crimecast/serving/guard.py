"""ASGI middleware in front of every route: bearer-token auth and a body-size limit.

Written as plain ASGI (not Starlette's BaseHTTPMiddleware) so it adds
microseconds, not milliseconds, to each request. Every request's scope gets
``AUTHENTICATED`` (True when no token is configured or the right one was sent), so
an open route such as ``/ping`` can say less to an anonymous caller.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from crimecast.errors import ServingError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# /ping carries no data and is what SageMaker's health check calls; /map is a static
# page whose scripts send the token (taken from the URL fragment) with every fetch; /docs
# and the API description hold no data; the vendored libraries are public files.
OPEN_PATHS = frozenset({"/", "/ping", "/map", "/docs", "/openapi.json"})
VENDOR_PATH = "/vendor"
AUTHENTICATED = "crimecast.authenticated"  # the scope key routes read
_SCHEME = b"bearer"  # RFC 7235: the auth scheme is case-insensitive


class BodyTooLargeError(ServingError):
    """The request body passed the limit while being read (no Content-Length given)."""


async def _reply(send: Send, status: int, detail: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Reject unauthenticated requests (401) and bodies over ``max_body_bytes`` (413)."""

    def __init__(self, app: ASGIApp, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.expected = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    def authenticated(self, header: bytes) -> bool:
        """Whether an ``Authorization`` value carries the token (constant-time compare;
        the scheme ``Bearer`` in any letter case, RFC 7235)."""
        if self.expected is None:
            return True
        scheme, _, credentials = header.partition(b" ")
        # Compare even when the scheme is wrong, so timing says nothing about which failed.
        same = hmac.compare_digest(credentials.lstrip(b" "), self.expected)
        return same and scheme.lower() == _SCHEME

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        scope[AUTHENTICATED] = self.authenticated(headers.get(b"authorization", b""))
        path = scope.get("path") or ""
        if not scope[AUTHENTICATED] and path not in OPEN_PATHS and not path.startswith(
                f"{VENDOR_PATH}/"):
            await _reply(send, 401, "missing or wrong bearer token. Send the header "
                         "Authorization: Bearer <token>.",
                         [(b"www-authenticate", b'Bearer realm="crimecast"')])
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _reply(send, 400, "Content-Length must be a whole number of bytes.")
                return
            if size > self.max_body_bytes:
                await _reply(send, 413, self._too_large())
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    # The app's ServingError handler turns this into the 413 answer.
                    raise BodyTooLargeError(self._too_large(), status=413)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await _reply(send, 413, self._too_large())

    def _too_large(self) -> str:
        return (f"the request body is larger than the limit of {self.max_body_bytes:,} bytes. "
                "Split it into smaller requests.")
