"""The one ASGI middleware every service runs: request id, access log, metrics, body limit,
and (behind the gateway) internal-token verification.

Written as plain ASGI rather than `BaseHTTPMiddleware` so streamed responses and WebSockets
pass through untouched and the per-request cost stays in microseconds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from nemo_server.common.auth import InternalTokenCodec, bearer_token
from nemo_server.common.context import REQUEST_ID_HEADER, request_id_var
from nemo_server.common.errors import NemoError, PayloadTooLarge, Unauthorized, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_access = logging.getLogger("nemo.access")


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` mid-body. An HTTPException so FastAPI's body parsing re-raises it
    as it is instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


class HttpMetrics:
    """Request count and latency per route template."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.requests = Counter(
            "nemo_http_requests_total",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "nemo_http_request_duration_seconds",
            "Time to the start of the response",
            ["service", "method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_error(send: Send, exc: NemoError, request_id: str) -> None:
    import json

    body = json.dumps(
        error_body(exc.message, type=exc.type, code=exc.code, param=exc.param)
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServiceMiddleware:
    """Request id, access log, metrics, body limit and internal auth in one pass."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        max_body_bytes: int,
        codec: InternalTokenCodec | None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.codec = codec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and len(incoming) <= 128 else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            if scope["type"] == "websocket":
                if not self._authenticate(scope):
                    await send({"type": "websocket.close", "code": 4401})
                    return
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, request_id)
        finally:
            request_id_var.reset(token)

    def _authenticate(self, scope: Scope) -> bool:
        """Verify the internal token; True when the request may go on."""
        if self.codec is None or scope["path"] in PUBLIC_PATHS:
            return True
        token = bearer_token(_header(scope, b"authorization"))
        if token is None:
            return False
        try:
            principal = self.codec.verify(token)
        except Unauthorized:
            return False
        scope.setdefault("state", {})["principal"] = principal
        return True

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        start = time.perf_counter()
        status = 500
        method = scope["method"]
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
                self._observe(scope, method, status, start)
            await send(message)

        try:
            if not self._authenticate(scope):
                await _send_error(
                    send_wrapper, Unauthorized("a valid internal token is required"), request_id
                )
                return
            length = _header(scope, b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _send_error(send_wrapper, self._too_large(), request_id)
                return
            await self.app(scope, self._limited(receive), send_wrapper)
        except _BodyTooLarge:
            if not started:
                await _send_error(send_wrapper, self._too_large(), request_id)
        finally:
            if scope["path"] not in PUBLIC_PATHS:
                _access.info(
                    "%s %s %d %.1fms",
                    method,
                    scope["path"],
                    status,
                    (time.perf_counter() - start) * 1000,
                )

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body is larger than the limit of {self.max_body_bytes} bytes", param="body"
        )

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _BodyTooLarge(self.max_body_bytes)
            return message

        return wrapped

    def _observe(self, scope: Scope, method: str, status: int, start: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        self.metrics.requests.labels(self.metrics.service, method, template, str(status)).inc()
        self.metrics.latency.labels(self.metrics.service, method, template).observe(
            time.perf_counter() - start
        )
