"""Causal inference with DoWhy through the API: effect, interval, refutations, discovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.ml.conftest import upload_frame, wait_job


def _confounded(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    w = rng.normal(size=n)
    t = 0.8 * w + rng.normal(size=n)
    y = 2.0 * t + 3.0 * w + rng.normal(size=n)
    return pd.DataFrame({"w": w, "t": t, "y": y, "noise": rng.normal(size=n)})


def test_effect_interval_and_refutations(real_client: TestClient, alice: dict) -> None:
    dataset_id = upload_frame(real_client, alice, _confounded())
    job = real_client.post(
        "/v1/ml/causal",
        headers=alice,
        json={
            "dataset_id": dataset_id,
            "treatment": "t",
            "outcome": "y",
            "confounders": ["w"],
            "discover": True,
        },
    )
    assert job.status_code == 202, job.text
    done = wait_job(real_client, alice, job.json()["id"])
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert abs(result["effect"] - 2.0) < 0.2
    low, high = result["ci"]
    assert low < 2.0 < high
    assert [r["name"] for r in result["refutations"]] == [
        "placebo_treatment",
        "random_common_cause",
        "data_subset",
    ]
    placebo = result["refutations"][0]
    assert abs(placebo["new_effect"]) < 0.3 and placebo["passed"]
    assert result["adjustment_set"] == ["w"]
    edges = {(e["from"], e["to"]) for e in result["discovered_graph"]}
    assert ("t", "y") in edges or ("y", "t") in edges


def test_graph_input_and_binary_method_check(real_client: TestClient, alice: dict) -> None:
    dataset_id = upload_frame(real_client, alice, _confounded(200))
    bad = real_client.post(
        "/v1/ml/causal",
        headers=alice,
        json={
            "dataset_id": dataset_id,
            "treatment": "t",
            "outcome": "y",
            "method": "propensity_score_weighting",
        },
    )
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "method"
    bad = real_client.post(
        "/v1/ml/causal",
        headers=alice,
        json={"dataset_id": dataset_id, "treatment": "t", "outcome": "y", "graph": [["zz", "t"]]},
    )
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "graph"
    job = real_client.post(
        "/v1/ml/causal",
        headers=alice,
        json={
            "dataset_id": dataset_id,
            "treatment": "t",
            "outcome": "y",
            "graph": [["w", "t"], ["w", "y"], ["t", "y"]],
            "refutations": ["placebo_treatment"],
        },
    )
    done = wait_job(real_client, alice, job.json()["id"])
    assert done["status"] == "succeeded", done
    assert abs(done["result"]["effect"] - 2.0) < 0.3
    assert done["result"]["adjustment_set"] == ["w"]
