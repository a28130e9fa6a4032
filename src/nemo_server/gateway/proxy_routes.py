"""Everything else under `/v1/...`: forwarded to the owning service."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, WebSocket
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from nemo_server.common.errors import Forbidden, NemoError, NotFound
from nemo_server.gateway.deps import gate
from nemo_server.gateway.proxy import ADMIN_ONLY, Proxy, owner_of

_STATIC = Path(__file__).resolve().parent / "static"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _proxy(request: Request | WebSocket) -> Proxy:
    return request.app.state.proxy  # type: ignore[no-any-return]


async def forward(request: Request) -> Response:
    """Forward to the service owning the path (ARCHITECTURE.md's table)."""
    service = owner_of(request.url.path)
    if service is None:
        raise NotFound("no such route")
    principal, decision = await gate(request).admit(request)
    if service in ADMIN_ONLY and not principal.is_admin:
        raise Forbidden("admin role required")
    response = await _proxy(request).forward(request, service, principal)
    response.headers.update(decision.headers())
    return response


async def forward_websocket(websocket: WebSocket) -> None:
    """Forward a WebSocket (live transcription) to the owning service."""
    service = owner_of(websocket.url.path)
    if service is None:
        await websocket.close(code=4404, reason="no such route")
        return
    try:
        principal, _ = await gate(websocket).admit(websocket)
    except NemoError as exc:
        await websocket.close(code=4000 + exc.status_code, reason=exc.message[:120])
        return
    if service in ADMIN_ONLY and not principal.is_admin:
        await websocket.close(code=4403, reason="admin role required")
        return
    await _proxy(websocket).forward_websocket(websocket, service, principal)


async def web_ui(request: Request) -> Response:
    """The web UI: log in, chat with streaming, service health. One static page."""
    return FileResponse(_STATIC / "index.html", headers={"Cache-Control": "no-cache"})


# Plain Starlette routes: the proxy needs none of FastAPI's parameter machinery, and skipping it
# is a measurable share of the gateway's added latency.
routes: list[BaseRoute] = [
    Route("/", web_ui, methods=["GET"], include_in_schema=False),
    Route("/v1/{path:path}", forward, methods=_METHODS, include_in_schema=False),
    WebSocketRoute("/v1/{path:path}", forward_websocket),
]
