"""A gateway in-process, with a known admin password (a mounted secret, as in Docker)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.services import SERVICES
from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import free_port
from nemo_server.gateway.app import create_app
from nemo_server.gateway.settings import GatewaySettings

ADMIN_PASSWORD = "admin-password-123"


@pytest.fixture
def gateway_settings(common_settings: CommonSettings) -> GatewaySettings:
    common_settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    (common_settings.secrets_dir / "admin_password").write_text(ADMIN_PASSWORD)
    # Upstreams are down unless a test starts one: a port nothing listens on, not the seed
    # ports, where a platform the developer is running would answer instead.
    closed = f"http://127.0.0.1:{free_port()}"
    common_settings.service_urls = {name: closed for name in SERVICES if name != "gateway"}
    return GatewaySettings(
        common=common_settings, rate_limit_per_minute=6000, rate_limit_burst=1000
    )


@pytest.fixture
def gateway(gateway_settings: GatewaySettings) -> Iterator[TestClient]:
    with TestClient(create_app(gateway_settings)) as client:
        yield client


def login(client: TestClient, username: str, password: str) -> dict[str, Any]:
    response = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_token(gateway: TestClient) -> str:
    return str(login(gateway, "admin", ADMIN_PASSWORD)["access_token"])


@pytest.fixture
def user_token(gateway: TestClient, admin_token: str) -> str:
    response = gateway.post(
        "/v1/admin/users",
        json={"username": "alice", "password": "alice-password"},
        headers=bearer(admin_token),
    )
    assert response.status_code == 201, response.text
    return str(login(gateway, "alice", "alice-password")["access_token"])
