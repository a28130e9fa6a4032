"""Fixtures of the ML service tests: settings on a fresh data dir, clients, upload helpers."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, BOB, internal_headers
from nemo_server.ml.app import create_app
from nemo_server.ml.settings import MLSettings

FAKE = "nemo_server.ml.engines.fake:run_task"


@pytest.fixture
def ml_settings(common_settings: CommonSettings) -> MLSettings:
    return MLSettings(common=common_settings, max_time_budget_s=30, default_time_budget_s=2)


@pytest.fixture
def alice(ml_settings: MLSettings) -> dict[str, str]:
    return internal_headers(ml_settings.common, ALICE)


@pytest.fixture
def bob(ml_settings: MLSettings) -> dict[str, str]:
    return internal_headers(ml_settings.common, BOB)


@pytest.fixture
def fake_client(ml_settings: MLSettings) -> Iterator[TestClient]:
    """The app whose worker processes run the fake task."""
    with TestClient(create_app(ml_settings, job_target=FAKE)) as client:
        yield client


@pytest.fixture
def real_client(ml_settings: MLSettings) -> Iterator[TestClient]:
    """The app with the real engines."""
    with TestClient(create_app(ml_settings)) as client:
        yield client


def upload(
    client: TestClient, headers: dict[str, str], csv: str | bytes, name: str = "data.csv"
) -> Any:
    data = csv.encode() if isinstance(csv, str) else csv
    return client.post(
        "/v1/ml/datasets", headers=headers, files={"file": (name, io.BytesIO(data), "text/csv")}
    )


def upload_frame(client: TestClient, headers: dict[str, str], frame: Any) -> str:
    response = upload(client, headers, frame.to_csv(index=False))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_job(
    client: TestClient,
    headers: dict[str, str],
    job_id: str,
    timeout: float = 120.0,
    until: Callable[[dict], bool] | None = None,
) -> dict:
    until = until or (lambda job: job["status"] in ("succeeded", "failed", "cancelled"))
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/ml/jobs/{job_id}", headers=headers).json()
        if until(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.2)
