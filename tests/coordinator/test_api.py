"""The coordinator's HTTP API in process: lease lifecycle, bad input, status, metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.testing import ADMIN, ALICE, internal_headers
from nemo_server.coordinator.app import create_app
from nemo_server.coordinator.settings import CoordinatorSettings

LEASES = "/internal/v1/leases"


@pytest.fixture
def client(coordinator_settings: CoordinatorSettings) -> Iterator[TestClient]:
    with TestClient(create_app(coordinator_settings)) as c:
        c.headers.update(internal_headers(coordinator_settings.common, ALICE))
        yield c


def ask(client: TestClient, holder: str, priority: str, vram: int, **kw: float) -> dict:
    body = {"holder": holder, "priority": priority, "vram_mb": vram, **kw}
    response = client.post(LEASES, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_lease_lifecycle_with_preemption(client: TestClient) -> None:
    bg = ask(client, "transcription:job", "background", 800)
    assert bg["state"] == "granted" and bg["token"] > 0
    fg = ask(client, "llm:chat", "foreground", 500, wait_s=0.1)
    assert fg["state"] == "waiting"
    beat = client.post(f"{LEASES}/{bg['id']}/heartbeat", json={"token": bg["token"]})
    assert beat.status_code == 200 and beat.json()["preempt_requested"] is True
    assert (
        client.post(f"{LEASES}/{bg['id']}/release", json={"token": bg["token"]}).json()["state"]
        == "released"
    )
    granted = client.get(f"{LEASES}/{fg['id']}", params={"wait_s": 2}).json()
    assert granted["state"] == "granted" and granted["token"] > bg["token"]
    ok = client.post(f"{LEASES}/{fg['id']}/validate", json={"token": granted["token"]})
    assert ok.status_code == 200


def test_waiting_request_can_be_withdrawn(client: TestClient) -> None:
    ask(client, "a", "foreground", 1000)
    waiting = ask(client, "b", "foreground", 10)
    assert client.delete(f"{LEASES}/{waiting['id']}").json()["state"] == "cancelled"
    assert client.get(f"{LEASES}/{waiting['id']}").json()["state"] == "cancelled"


def test_bad_input_gets_clear_errors(client: TestClient) -> None:
    bad = client.post(LEASES, json={"holder": "a", "priority": "urgent", "vram_mb": 10})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "priority"
    huge = client.post(LEASES, json={"holder": "a", "priority": "foreground", "vram_mb": 4000})
    assert huge.status_code == 409
    assert "exceeds the whole GPU budget of 1000 MB" in huge.json()["error"]["message"]
    assert huge.json()["error"]["param"] == "vram_mb"
    unknown = client.post(f"{LEASES}/no-such-lease/heartbeat", json={"token": 1})
    assert unknown.status_code == 404
    assert client.get(f"{LEASES}/no-such-lease").status_code == 404
    lease = ask(client, "a", "foreground", 100)
    stale = client.post(f"{LEASES}/{lease['id']}/heartbeat", json={"token": lease["token"] - 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "lease_lost"
    client.post(f"{LEASES}/{lease['id']}/release", json={"token": lease["token"]})
    after = client.post(f"{LEASES}/{lease['id']}/validate", json={"token": lease["token"]})
    assert after.status_code == 409 and "released" in after.json()["error"]["message"]
    no_token = client.post(f"{LEASES}/{lease['id']}/heartbeat", json={})
    assert no_token.status_code == 422 and no_token.json()["error"]["param"] == "token"


def test_internal_api_needs_the_internal_token(coordinator_settings: CoordinatorSettings) -> None:
    with TestClient(create_app(coordinator_settings)) as c:
        body = {"holder": "a", "priority": "foreground", "vram_mb": 10}
        assert c.post(LEASES, json=body).status_code == 401


def test_status_is_for_admins_and_shows_leases_queue_and_holders(
    client: TestClient, coordinator_settings: CoordinatorSettings
) -> None:
    ask(client, "transcription:job", "background", 800)
    ask(client, "llm:chat", "foreground", 500)
    assert client.get("/v1/gpu/status").status_code == 403
    admin = internal_headers(coordinator_settings.common, ADMIN)
    status = client.get("/v1/gpu/status", headers=admin).json()
    assert status["budget_mb"] == 1000 and status["budget_source"] == "config"
    assert status["backend"] == "memory" and status["used_mb"] == 800
    assert [le["holder"] for le in status["leases"]] == ["transcription:job"]
    assert status["leases"][0]["preempt_requested"] is True
    assert [q["holder"] for q in status["queue"]] == ["llm:chat"]
    assert status["holders"]["transcription:job"]["preempted"] == 1


def test_metrics_count_waits_preemptions_and_revocations(
    coordinator_settings: CoordinatorSettings,
) -> None:
    settings = coordinator_settings.model_copy(update={"grace_s": 0.1})
    with TestClient(create_app(settings)) as c:
        c.headers.update(internal_headers(settings.common, ALICE))
        ask(c, "bg", "background", 800, ttl_s=1)
        fg = ask(c, "fg", "foreground", 500, wait_s=5)  # granted once bg's TTL ran out
        assert fg["state"] == "granted"
        text = c.get("/metrics").text
    assert 'nemo_gpu_preemptions_total{priority="background"} 1.0' in text
    assert 'nemo_gpu_revocations_total{reason="preempt_timeout"} 1.0' in text
    assert 'nemo_gpu_lease_wait_seconds_count{priority="foreground"} 1.0' in text
    assert "nemo_gpu_vram_budget_mb 1000.0" in text


def test_event_stream_reports_the_end_of_a_lease(client: TestClient) -> None:
    lease = ask(client, "a", "foreground", 100)
    client.post(f"{LEASES}/{lease['id']}/release", json={"token": lease["token"]})
    with client.stream("GET", f"{LEASES}/{lease['id']}/events") as response:
        assert response.status_code == 200
        body = response.read().decode()
    assert "event: released" in body


def test_budget_falls_back_to_the_configured_one_without_a_gpu(
    coordinator_settings: CoordinatorSettings,
) -> None:
    from nemo_server.coordinator.budget import resolve_budget

    auto = coordinator_settings.model_copy(update={"budget_source": "auto"})
    budget = resolve_budget(auto)
    if budget.source == "nvml":  # a machine with a GPU: the budget is real VRAM minus reserve
        assert budget.mb == budget.device["total_mb"] - auto.reserve_mb
    else:
        assert budget.mb == 1000
