"""AutoML with the real FLAML engine: a job, its leaderboard and metrics, saved model, predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.ml.conftest import upload_frame, wait_job


def test_classification_predicts_original_labels(
    real_client: TestClient, alice: dict, bob: dict
) -> None:
    rng = np.random.default_rng(1)
    n = 200
    x = rng.normal(size=n)
    color = rng.choice(["red", "blue"], size=n)
    label = np.where(x + (color == "red") * 0.5 > 0.2, "yes", "no")
    frame = pd.DataFrame({"x": x, "color": color, "noise": rng.normal(size=n), "label": label})
    dataset_id = upload_frame(real_client, alice, frame)
    job = real_client.post(
        "/v1/ml/automl",
        headers=alice,
        json={
            "dataset_id": dataset_id,
            "target": "label",
            "task": "classification",
            "time_budget_s": 2,
            "estimators": ["lgbm", "rf", "lrl1"],
        },
    )
    assert job.status_code == 202, job.text
    done = wait_job(real_client, alice, job.json()["id"])
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["holdout"]["accuracy"] > 0.7
    assert result["leaderboard"] and result["best_estimator"] in ("lgbm", "rf", "lrl1")
    assert result["classes"] == ["no", "yes"]
    assert result["feature_importances"][0]["feature"] == "x"
    model_id = result["model_id"]
    rows = [{"x": 3.0, "color": "red", "noise": 0.0}, {"x": -3.0, "color": "blue", "noise": 0.0}]
    response = real_client.post(
        f"/v1/ml/models/{model_id}/predict",
        headers=alice,
        json={"rows": rows, "probabilities": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == ["yes", "no"]
    assert set(body["probabilities"][0]) == {"no", "yes"}
    assert (
        real_client.post(
            f"/v1/ml/models/{model_id}/predict", headers=bob, json={"rows": rows}
        ).status_code
        == 404
    )
    bad = real_client.post(
        f"/v1/ml/models/{model_id}/predict",
        headers=alice,
        json={"rows": [{"x": 1.0, "color": "red"}]},
    )
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "rows[0].noise"
    bad = real_client.post(
        f"/v1/ml/models/{model_id}/predict",
        headers=alice,
        json={"rows": [{"x": "high", "color": "red", "noise": 1}]},
    )
    assert bad.status_code == 422
    models = real_client.get("/v1/ml/models", headers=alice).json()["data"]
    assert [m["id"] for m in models] == [model_id]


def test_regression(real_client: TestClient, alice: dict) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.uniform(0, 1, 150), "b": rng.uniform(0, 1, 150)})
    frame["y"] = 3 * frame["a"] - frame["b"]
    dataset_id = upload_frame(real_client, alice, frame)
    job = real_client.post(
        "/v1/ml/automl",
        headers=alice,
        json={
            "dataset_id": dataset_id,
            "target": "y",
            "time_budget_s": 2,
            "estimators": ["lgbm", "extra_tree"],
        },
    )
    done = wait_job(real_client, alice, job.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["task"] == "regression"
    assert done["result"]["holdout"]["r2"] > 0.8
    pred = real_client.post(
        f"/v1/ml/models/{done['result']['model_id']}/predict",
        headers=alice,
        json={"rows": [{"a": 0.9, "b": 0.1}]},
    ).json()
    assert 1.5 < pred["predictions"][0] < 3.5
