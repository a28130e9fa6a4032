"""Rate limits per user and API key: GCRA in memory and in Redis, and Redis going down."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nemo_server.gateway.app import create_app
from nemo_server.gateway.ratelimit.base import Limit, gcra
from nemo_server.gateway.settings import GatewaySettings
from tests.gateway.conftest import ADMIN_PASSWORD, bearer, login


def test_gcra_admits_a_burst_then_one_per_interval() -> None:
    limit = Limit(rate=60, period_s=60.0, burst=3)
    tat, now = 0.0, 100.0
    admitted = []
    for _ in range(5):
        decision, new_tat = gcra(tat, now, limit)
        admitted.append(decision.allowed)
        tat = new_tat if new_tat is not None else tat
    assert admitted == [True, True, True, False, False]
    refused, _ = gcra(tat, now, limit)
    assert 0.9 < refused.retry_after_s <= 1.0
    later, _ = gcra(tat, now + 1.0, limit)
    assert later.allowed


@pytest.fixture
def limited_settings(gateway_settings: GatewaySettings) -> GatewaySettings:
    gateway_settings.rate_limit_per_minute = 60
    gateway_settings.rate_limit_burst = 3
    return gateway_settings


@pytest.fixture
def limited(limited_settings: GatewaySettings) -> Iterator[TestClient]:
    with TestClient(create_app(limited_settings)) as client:
        yield client


def test_429_carries_retry_after_and_ratelimit_headers(limited: TestClient) -> None:
    token = login(limited, "admin", ADMIN_PASSWORD)["access_token"]
    statuses = [limited.get("/v1/users/me", headers=bearer(token)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = limited.get("/v1/users/me", headers=bearer(token))
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= 1


def test_api_keys_have_their_own_limit(limited: TestClient) -> None:
    token = login(limited, "admin", ADMIN_PASSWORD)["access_token"]
    key = limited.post("/v1/api-keys", json={"name": "k"}, headers=bearer(token)).json()["key"]
    for _ in range(3):
        limited.get("/v1/users/me", headers=bearer(token))
    assert limited.get("/v1/users/me", headers=bearer(token)).status_code == 429
    assert limited.get("/v1/users/me", headers=bearer(key)).status_code == 200


def test_password_guessing_is_limited(limited_settings: GatewaySettings) -> None:
    limited_settings.login_attempts_per_minute = 3
    with TestClient(create_app(limited_settings)) as client:
        codes = [
            client.post(
                "/v1/auth/token", data={"username": "admin", "password": "guess-guess"}
            ).status_code
            for _ in range(4)
        ]
    assert codes == [401, 401, 401, 429]


@pytest.mark.integration
def test_two_gateways_on_one_redis_share_the_limit(
    limited_settings: GatewaySettings, redis_url: str
) -> None:
    limited_settings.common.redis_url = redis_url
    with (
        TestClient(create_app(limited_settings)) as one,
        TestClient(create_app(limited_settings)) as two,
    ):
        token = login(one, "admin", ADMIN_PASSWORD)["access_token"]
        start = time.monotonic()
        allowed = 0
        for i in range(12):
            client = one if i % 2 == 0 else two
            allowed += client.get("/v1/users/me", headers=bearer(token)).status_code == 200
        elapsed = time.monotonic() - start
    # Burst 3 plus one per second elapsed, shared: never the 6 two separate limits would allow.
    assert allowed <= 3 + int(elapsed) + 1
    assert allowed >= 3


@pytest.mark.integration
def test_redis_down_local_mode_keeps_serving_but_logins_fail_closed(
    limited_settings: GatewaySettings, gateway: TestClient
) -> None:
    token = login(gateway, "admin", ADMIN_PASSWORD)["access_token"]
    limited_settings.common.redis_url = "redis://127.0.0.1:1/0"  # nothing listens there
    limited_settings.redis_failure_mode = "local"
    with TestClient(create_app(limited_settings)) as client:
        assert client.get("/v1/users/me", headers=bearer(token)).status_code == 200
        login_attempt = client.post(
            "/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert login_attempt.status_code == 503
        # Local limits still apply per replica.
        codes = [client.get("/v1/users/me", headers=bearer(token)).status_code for _ in range(4)]
        assert 429 in codes


@pytest.mark.integration
def test_redis_down_closed_mode_refuses(
    limited_settings: GatewaySettings, gateway: TestClient
) -> None:
    token = login(gateway, "admin", ADMIN_PASSWORD)["access_token"]
    limited_settings.common.redis_url = "redis://127.0.0.1:1/0"
    limited_settings.redis_failure_mode = "closed"
    with TestClient(create_app(limited_settings)) as client:
        response = client.get("/v1/users/me", headers=bearer(token))
    assert response.status_code == 503
    assert "Redis" in response.json()["error"]["message"]
