"""Forwarding to the owning service: plain requests, streamed responses, uploads, WebSockets.

The path is forwarded unchanged. The client's credentials and any identity headers it sent are
dropped; the gateway adds a short-lived internal token naming the user and roles, and the
request id. Bodies stream both ways without buffering, so SSE tokens reach the client as the
service writes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDict
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from nemo_server.common.auth import InternalTokenCodec, Principal
from nemo_server.common.context import REQUEST_ID_HEADER, request_id_var
from nemo_server.common.errors import ServiceUnavailable, UpstreamTimeout
from nemo_server.common.settings import CommonSettings

log = logging.getLogger("nemo.gateway.proxy")

# Public path prefix -> owning service (ARCHITECTURE.md). Longest prefix first.
ROUTES: tuple[tuple[str, str], ...] = (
    ("/v1/chat/completions", "llm"),
    ("/v1/completions", "llm"),
    ("/v1/models", "llm"),
    ("/v1/conversations", "llm"),
    ("/v1/llm", "llm"),
    ("/v1/gpu", "coordinator"),
    ("/v1/audio", "transcription"),
    ("/v1/transcriptions", "transcription"),
    ("/v1/embeddings", "rag"),
    ("/v1/rag", "rag"),
    ("/v1/emotion", "emotion"),
    ("/v1/ml", "ml"),
    ("/v1/insights", "insights"),
)
ADMIN_ONLY = frozenset({"coordinator"})

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
        "cookie",
        "content-length",
    }
)
_BUFFER_UP_TO = 256 * 1024
# Identity headers a client could send hoping a service trusts them.
_IDENTITY_PREFIXES = ("x-nemo-", "x-user", "x-forwarded-user", "x-auth", "x-remote-user")


def owner_of(path: str) -> str | None:
    """The service owning a public path, or None."""
    for prefix, service in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


def _forward_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    out = []
    for key, value in headers:
        name = key.decode("latin-1").lower()
        if (
            name in _HOP_BY_HOP
            or name.startswith(_IDENTITY_PREFIXES)
            or name.startswith("sec-websocket")
        ):
            continue
        out.append((name, value.decode("latin-1")))
    return out


class Proxy:
    """Forwards requests to the services over one pooled aiohttp session.

    aiohttp rather than httpx on this hot path: measured on this machine, a keep-alive request
    costs about a quarter of httpx's client time, the biggest share of what the gateway adds.
    """

    def __init__(
        self,
        settings: CommonSettings,
        codec: InternalTokenCodec,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.read_timeout_s = read_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._tokens: dict[tuple[object, ...], tuple[str, float]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect_timeout_s, sock_read=self.read_timeout_s
                ),
                auto_decompress=False,  # relay bytes exactly as the service encoded them
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    def _internal_token(self, principal: Principal) -> str:
        # Reuse a principal's internal token for half its life: minting costs more than a lookup.
        key = (principal.user_id, principal.username, principal.roles, principal.api_key_id)
        now = time.monotonic()
        cached = self._tokens.get(key)
        if cached and cached[1] > now:
            return cached[0]
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        token = self.codec.mint(principal)
        self._tokens[key] = (token, now + self.codec.ttl_s / 2)
        return token

    def _internal_headers(self, principal: Principal) -> dict[str, str]:
        headers = {"authorization": f"Bearer {self._internal_token(principal)}"}
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER.lower()] = request_id
        return headers

    async def forward(self, request: Request, service: str, principal: Principal) -> Response:
        url = self.settings.url_for(service) + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        headers = _forward_headers(request.headers.raw)
        headers += list(self._internal_headers(principal).items())
        headers.append(("x-forwarded-for", request.client.host if request.client else ""))
        length = request.headers.get("content-length")
        if length is not None:
            headers.append(("content-length", length))
        has_body = length not in (None, "0") or "transfer-encoding" in request.headers
        try:
            upstream = await self._http().request(
                request.method,
                url,
                headers=CIMultiDict(headers),
                data=request.stream() if has_body else None,
                allow_redirects=False,
            )
        except TimeoutError:
            raise UpstreamTimeout(f"service '{service}' did not answer in time") from None
        except aiohttp.ClientError:
            raise ServiceUnavailable(f"service '{service}' is unavailable", param=service) from None
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "x-request-id"
        ]
        size = upstream.content_length
        if size is not None and size <= _BUFFER_UP_TO:
            # A small, complete body: relaying it whole skips the streaming machinery's cost.
            try:
                body = await upstream.read()
            except (aiohttp.ClientError, TimeoutError):
                raise ServiceUnavailable(f"service '{service}' broke off its answer") from None
            finally:
                upstream.release()
            response: Response = Response(body, status_code=upstream.status)
        else:
            response = StreamingResponse(
                _relay(upstream),
                status_code=upstream.status,
                background=BackgroundTask(upstream.release),
            )
        response.raw_headers = [*response.raw_headers, *raw]
        return response

    async def forward_websocket(
        self, websocket: WebSocket, service: str, principal: Principal
    ) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        base = (
            self.settings.url_for(service).replace("http://", "ws://").replace("https://", "wss://")
        )
        url = base + websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
        try:
            upstream = await connect(
                url,
                additional_headers=self._internal_headers(principal),
                open_timeout=self.connect_timeout_s,
                max_size=None,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.warning("websocket to %s failed: %s", service, exc)
            await websocket.close(code=1011, reason=f"service '{service}' is unavailable")
            return
        await websocket.accept()

        async def client_to_service() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    if message.get("bytes") is not None:
                        await upstream.send(message["bytes"])
                    elif message.get("text") is not None:
                        await upstream.send(message["text"])
            finally:
                await upstream.close()

        async def service_to_client() -> None:
            try:
                async for data in upstream:
                    if isinstance(data, bytes):
                        await websocket.send_bytes(data)
                    else:
                        await websocket.send_text(data)
            except ConnectionClosed:
                pass
            close_code = upstream.close_code or 1000
            try:
                await websocket.close(code=close_code if close_code != 1006 else 1011)
            except RuntimeError:
                pass  # already closed by the client

        tasks = [asyncio.create_task(client_to_service()), asyncio.create_task(service_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except WebSocketDisconnect:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _relay(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except TimeoutError:
        log.warning("upstream stream timed out")
    except aiohttp.ClientError as exc:
        log.warning("upstream stream broke: %s", exc)
