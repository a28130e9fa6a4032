"""Jobs run in worker processes: progress, results stored, cancel, failures, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.ml.conftest import upload_frame, wait_job


def _dataset(client: TestClient, headers: dict) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=40),
            "z": rng.normal(size=40),
            "label": rng.choice(["a", "b"], size=40),
        }
    )
    frame["y"] = 2 * frame["x"]
    frame["explode"] = 1.0
    frame["bad name"] = 1.0
    return upload_frame(client, headers, frame)


def test_job_runs_and_stores_result(fake_client: TestClient, alice: dict) -> None:
    dataset_id = _dataset(fake_client, alice)
    response = fake_client.post(
        "/v1/ml/symbolic-regression",
        headers=alice,
        json={"dataset_id": dataset_id, "target": "y", "time_budget_s": 1},
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running") and job["progress"] < 1
    # the API answers while the worker process runs
    assert fake_client.get("/v1/ml/datasets", headers=alice).status_code == 200
    done = wait_job(fake_client, alice, job["id"])
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert done["result"]["echo"]["features"] == ["x", "z", "explode"]
    listed = fake_client.get("/v1/ml/jobs", headers=alice).json()["data"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_cancel_running_job(fake_client: TestClient, alice: dict, bob: dict) -> None:
    dataset_id = _dataset(fake_client, alice)
    job = fake_client.post(
        "/v1/ml/symbolic-regression",
        headers=alice,
        json={"dataset_id": dataset_id, "target": "y", "time_budget_s": 20},
    ).json()
    running = wait_job(
        fake_client,
        alice,
        job["id"],
        timeout=60,
        until=lambda j: j["progress"] > 0 or (j["status"] != "running" and j["status"] != "queued"),
    )
    assert running["status"] == "running" and running["progress"] > 0
    assert fake_client.post(f"/v1/ml/jobs/{job['id']}/cancel", headers=bob).status_code == 404
    cancelled = fake_client.post(f"/v1/ml/jobs/{job['id']}/cancel", headers=alice)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = fake_client.post(f"/v1/ml/jobs/{job['id']}/cancel", headers=alice)
    assert again.status_code == 409
    assert wait_job(fake_client, alice, job["id"])["status"] == "cancelled"


def test_failed_job_reports_error(fake_client: TestClient, alice: dict) -> None:
    dataset_id = _dataset(fake_client, alice)
    job = fake_client.post(
        "/v1/ml/symbolic-regression",
        headers=alice,
        json={"dataset_id": dataset_id, "target": "explode", "time_budget_s": 0.1},
    ).json()
    done = wait_job(fake_client, alice, job["id"])
    assert done["status"] == "failed" and "asked to fail" in done["error"]


def test_bad_requests_name_the_field(ml_settings, fake_client: TestClient, alice: dict) -> None:
    dataset_id = _dataset(fake_client, alice)

    def post(path: str, **body: object) -> tuple[int, str | None]:
        response = fake_client.post(path, headers=alice, json={"dataset_id": dataset_id, **body})
        return response.status_code, response.json()["error"]["param"]

    assert post("/v1/ml/automl", target="nope") == (422, "target")
    assert post("/v1/ml/automl", target="y", features=["x", "w"]) == (422, "features")
    assert post("/v1/ml/automl", target="label", task="regression") == (422, "target")
    assert post("/v1/ml/automl", target="y", time_budget_s=31) == (422, "time_budget_s")
    assert post("/v1/ml/automl", target="y", time_budget_s=-1) == (422, "time_budget_s")
    assert post("/v1/ml/automl", target="y", task="clustering") == (422, "task")
    assert post("/v1/ml/symbolic-regression", target="label") == (422, "target")
    assert post("/v1/ml/symbolic-regression", target="y", features=["label"]) == (422, "features")
    assert post("/v1/ml/symbolic-regression", target="y", features=["x", "bad name"]) == (
        422,
        "features",
    )
    assert post("/v1/ml/causal", treatment="x", outcome="nope") == (422, "outcome")
    assert post("/v1/ml/causal", treatment="x", outcome="y", confounders=["q"]) == (
        422,
        "confounders",
    )
    status, _ = post("/v1/ml/automl", target="y", bogus=1)
    assert status == 422
    missing = fake_client.post(
        "/v1/ml/automl", headers=alice, json={"dataset_id": "ds_nope", "target": "y"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "dataset_id"
    ml_settings.min_rows = 100
    assert post("/v1/ml/automl", target="y") == (422, "dataset_id")


def test_restart_fails_jobs_left_unfinished(ml_settings, alice: dict) -> None:
    from fastapi.testclient import TestClient

    from nemo_server.ml.app import create_app
    from tests.ml.conftest import FAKE

    with TestClient(create_app(ml_settings, job_target=FAKE)) as client:
        store = client.app.state.ml.jobs
        job = store.create("u-alice", "automl", None, {"target": "y"})
    with TestClient(create_app(ml_settings, job_target=FAKE)) as client:
        body = client.get(f"/v1/ml/jobs/{job.id}", headers=alice).json()
        assert body["status"] == "failed" and "interrupted" in body["error"]
