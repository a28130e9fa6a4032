"""Routing through the gateway to a real service over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator

import pytest
from fastapi import Depends, File, Form, Request, UploadFile, WebSocket
from fastapi.testclient import TestClient
from sse_starlette.sse import EventSourceResponse

from nemo_server.common.app import create_service_app, service_router
from nemo_server.common.auth import Principal, current_principal
from nemo_server.common.settings import CommonSettings, ServiceSettings
from nemo_server.common.testing import ServerThread
from nemo_server.gateway.app import create_app
from nemo_server.gateway.settings import GatewaySettings
from tests.gateway.conftest import bearer

release_stream = threading.Event()


def _upstream(common: CommonSettings):  # type: ignore[no-untyped-def]
    router = service_router()

    @router.post("/v1/chat/completions")
    async def echo(request: Request, principal: Principal = Depends(current_principal)) -> dict:
        return {
            "user": principal.username,
            "roles": list(principal.roles),
            "body": await request.json(),
            "saw_identity_header": "x-nemo-user" in request.headers,
            "request_id": request.headers.get("x-request-id"),
        }

    @router.get("/v1/llm/stream")
    async def stream(principal: Principal = Depends(current_principal)) -> EventSourceResponse:
        async def events():  # type: ignore[no-untyped-def]
            yield {"data": "first"}
            released = await asyncio.to_thread(release_stream.wait, 10)
            yield {"data": "second" if released else "gateway-buffered"}
            yield {"data": "[DONE]"}

        return EventSourceResponse(events())

    @router.post("/v1/audio/transcriptions")
    async def upload(
        file: UploadFile = File(...),
        model: str = Form(...),
        principal: Principal = Depends(current_principal),
    ) -> dict:
        data = await file.read()
        return {
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "model": model,
            "filename": file.filename,
        }

    @router.websocket("/v1/audio/stream")
    async def ws(websocket: WebSocket) -> None:
        principal: Principal = websocket.scope["state"]["principal"]
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"{principal.username}:{text}")

    return create_service_app("llm", ServiceSettings(common=common), routers=[router])


@pytest.fixture
def upstream(common_settings: CommonSettings) -> Iterator[ServerThread]:
    with ServerThread(_upstream(common_settings)) as server:
        yield server


@pytest.fixture
def routed(
    upstream: ServerThread, gateway_settings: GatewaySettings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    urls = {name: upstream.url for name in ("llm", "transcription")}
    gateway_settings.common.service_urls = {**gateway_settings.common.service_urls, **urls}
    with TestClient(create_app(gateway_settings)) as client:
        yield client


def test_forwards_json_with_internal_identity(routed: TestClient, user_token: str) -> None:
    response = routed.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={**bearer(user_token), "X-Nemo-User": "admin", "X-Request-ID": "rid-7"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"] == "alice" and body["roles"] == ["user"]
    assert body["saw_identity_header"] is False
    assert body["request_id"] == "rid-7"
    assert body["body"]["messages"][0]["content"] == "hi"
    assert int(response.headers["ratelimit-remaining"]) >= 0


def test_streams_sse_without_buffering(routed: TestClient, user_token: str) -> None:
    release_stream.clear()
    with routed.stream("GET", "/v1/llm/stream", headers=bearer(user_token)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert first == "data: first"
        release_stream.set()  # only now may the service send the rest
        rest = [line for line in lines if line.startswith("data:")]
    assert rest == ["data: second", "data: [DONE]"]


def test_forwards_multipart_uploads(routed: TestClient, user_token: str) -> None:
    payload = bytes(range(256)) * 4000  # ~1 MB
    response = routed.post(
        "/v1/audio/transcriptions",
        files={"file": ("talk.wav", payload, "audio/wav")},
        data={"model": "whisper-1"},
        headers=bearer(user_token),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "model": "whisper-1",
        "filename": "talk.wav",
    }


def test_forwards_websockets(routed: TestClient, user_token: str) -> None:
    with routed.websocket_connect("/v1/audio/stream", headers=bearer(user_token)) as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "alice:hello"
    # Browsers cannot set headers on a WebSocket: the token may come as a query parameter.
    with routed.websocket_connect(f"/v1/audio/stream?access_token={user_token}") as ws:
        ws.send_text("again")
        assert ws.receive_text() == "alice:again"


def test_websocket_without_token_is_refused(routed: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as info,
        routed.websocket_connect("/v1/audio/stream") as ws,
    ):
        ws.receive_text()
    assert info.value.code == 4401


def test_service_down_is_503_naming_it(routed: TestClient, user_token: str) -> None:
    response = routed.get("/v1/rag/documents", headers=bearer(user_token))
    assert response.status_code == 503
    assert "rag" in response.json()["error"]["message"]


def test_upload_over_gateway_limit_is_413(
    upstream: ServerThread, gateway_settings: GatewaySettings, user_token: str, gateway: TestClient
) -> None:
    gateway_settings.max_body_bytes = 10_000
    gateway_settings.common.service_urls = {"transcription": upstream.url}
    with TestClient(create_app(gateway_settings)) as small:
        response = small.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", b"x" * 50_000, "audio/wav")},
            data={"model": "m"},
            headers=bearer(user_token),
        )
    assert response.status_code == 413
