"""Service-to-service calls: identity and request id travel; failures name the service."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, Request

from nemo_server.common.app import create_service_app, service_router
from nemo_server.common.auth import InternalTokenCodec, Principal, current_principal
from nemo_server.common.clients import ServiceClient
from nemo_server.common.context import request_id_var
from nemo_server.common.errors import NotFound, ServiceUnavailable
from nemo_server.common.settings import CommonSettings, ServiceSettings
from nemo_server.common.testing import ALICE, free_port


def _callee(common: CommonSettings):  # type: ignore[no-untyped-def]
    router = service_router()

    @router.get("/v1/rag/whoami")
    async def whoami(request: Request, principal: Principal = Depends(current_principal)) -> dict:
        return {"user": principal.user_id, "request_id": request.headers.get("x-request-id")}

    @router.get("/v1/rag/missing")
    async def missing() -> dict:
        raise NotFound("no such document", param="id")

    return create_service_app("rag", ServiceSettings(common=common), routers=[router])


@pytest.fixture
def client(common_settings: CommonSettings) -> ServiceClient:
    codec = InternalTokenCodec(common_settings.secrets().get("internal_key"))
    transport = httpx.ASGITransport(app=_callee(common_settings))
    return ServiceClient("rag", "http://rag", codec, transport=transport)


async def test_identity_and_request_id_travel(client: ServiceClient) -> None:
    token = request_id_var.set("rid-42")
    try:
        body = await client.json("GET", "/v1/rag/whoami", ALICE)
    finally:
        request_id_var.reset(token)
    assert body == {"user": ALICE.user_id, "request_id": "rid-42"}


async def test_errors_come_back_in_the_one_shape(client: ServiceClient) -> None:
    with pytest.raises(NotFound) as info:
        await client.json("GET", "/v1/rag/missing", ALICE)
    assert info.value.message == "no such document" and info.value.param == "id"


async def test_unreachable_service_is_503_naming_it(common_settings: CommonSettings) -> None:
    codec = InternalTokenCodec(common_settings.secrets().get("internal_key"))
    down = ServiceClient("llm", f"http://127.0.0.1:{free_port()}", codec)
    with pytest.raises(ServiceUnavailable, match="llm"):
        await down.json("GET", "/v1/models", ALICE)
    await down.aclose()
