"""The frame every service gets from create_service_app()."""

from __future__ import annotations

import logging

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from nemo_server.common.app import create_service_app, service_router
from nemo_server.common.auth import Principal, current_principal, require_admin
from nemo_server.common.settings import CommonSettings, ServiceSettings
from nemo_server.common.testing import ADMIN, ALICE, internal_headers


class Item(BaseModel):
    name: str = Field(min_length=1)
    size: int


def _app(settings: ServiceSettings):  # type: ignore[no-untyped-def]
    router = service_router()

    @router.post("/v1/demo/items")
    async def create(item: Item, principal: Principal = Depends(current_principal)) -> dict:
        logging.getLogger("nemo.demo").info("created %s", item.name)
        return {"owner": principal.user_id, "name": item.name}

    @router.get("/v1/demo/admin")
    async def admin_only(principal: Principal = Depends(require_admin)) -> dict:
        return {"ok": True}

    return create_service_app("demo", settings, routers=[router])


@pytest.fixture
def client(common_settings: CommonSettings) -> TestClient:
    settings = ServiceSettings(common=common_settings, max_body_bytes=2048)
    return TestClient(_app(settings))


@pytest.fixture
def auth(common_settings: CommonSettings) -> dict[str, str]:
    return internal_headers(common_settings, ALICE)


def test_probes_and_metrics_need_no_token(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    client.get("/v1/demo/admin", headers=auth)
    client.get("/v1/demo/admin")
    metrics = client.get("/metrics").text
    assert 'route="/v1/demo/admin",service="demo",status="403"} 1.0' in metrics
    assert 'route="<unmatched>",service="demo",status="401"} 1.0' in metrics


def test_routes_refuse_requests_without_internal_token(client: TestClient) -> None:
    response = client.post("/v1/demo/items", json={"name": "a", "size": 1})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    forged = client.post(
        "/v1/demo/items",
        json={"name": "a", "size": 1},
        headers={"Authorization": "Bearer not-a-token", "X-Nemo-User": "u-admin"},
    )
    assert forged.status_code == 401


def test_principal_comes_from_the_token(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/demo/items", json={"name": "a", "size": 1}, headers=auth)
    assert response.status_code == 200
    assert response.json()["owner"] == ALICE.user_id


def test_admin_dependency(
    client: TestClient, common_settings: CommonSettings, auth: dict[str, str]
) -> None:
    assert client.get("/v1/demo/admin", headers=auth).status_code == 403
    admin = internal_headers(common_settings, ADMIN)
    assert client.get("/v1/demo/admin", headers=admin).status_code == 200


def test_request_id_is_echoed_and_logged(
    client: TestClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from nemo_server.common.context import RequestIdFilter

    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    response = client.post(
        "/v1/demo/items", json={"name": "a", "size": 1}, headers={**auth, "X-Request-ID": "req-123"}
    )
    assert response.headers["x-request-id"] == "req-123"
    records = [r for r in caplog.records if r.name == "nemo.demo"]
    assert records and records[0].request_id == "req-123"  # type: ignore[attr-defined]
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32


def test_malformed_json_is_422_naming_the_body(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/v1/demo/items", content=b'{"name": ', headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "body" and "malformed JSON" in error["message"]


def test_invalid_field_is_422_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/demo/items", json={"name": "a", "size": "big"}, headers=auth)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == "size"
    assert error["code"] == "validation_error"
    assert error["request_id"] == response.headers["x-request-id"]


def test_wrong_content_type_is_415(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/v1/demo/items", content=b"name=a", headers={**auth, "content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "text/plain" in response.json()["error"]["message"]


def test_body_over_limit_is_413(client: TestClient, auth: dict[str, str]) -> None:
    big = {"name": "x" * 4000, "size": 1}
    response = client.post("/v1/demo/items", json=big, headers=auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_chunked_body_over_limit_is_413_without_content_length(
    client: TestClient, auth: dict[str, str]
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 1024

    response = client.post(
        "/v1/demo/items", content=chunks(), headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 413


def test_unknown_route_is_404_in_the_error_shape(client: TestClient, auth: dict[str, str]) -> None:
    response = client.get("/nowhere", headers=auth)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
