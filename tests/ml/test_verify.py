"""/v1/ml/verify: structured claims checked against a dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.ml.conftest import upload_frame


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(6)
    n = 300
    w = rng.normal(size=n)
    dose = 0.5 * w + rng.normal(size=n)
    group = rng.choice(["a", "b"], size=n)
    recovery = 1.5 * dose + 2 * w + (group == "a") * 1.0 + rng.normal(size=n)
    m, v = rng.uniform(1, 3, n), rng.uniform(1, 3, n)
    return pd.DataFrame(
        {
            "w": w,
            "dose": dose,
            "group": group,
            "recovery": recovery,
            "m": m,
            "v": v,
            "E": 0.5 * m * v**2,
        }
    )


def test_claims_get_verdicts(fake_client: TestClient, alice: dict) -> None:
    frame = _data()
    dataset_id = upload_frame(fake_client, alice, frame)
    share_a = float((frame["group"] == "a").mean())
    claims = [
        {"type": "mean", "column": "dose", "op": "lt", "value": 5},
        {"type": "mean", "column": "recovery", "op": "approx", "value": 100},
        {"type": "share", "column": "group", "equals": "a", "value": share_a},
        {
            "type": "correlation",
            "x": "dose",
            "y": "recovery",
            "sign": "positive",
            "strength": "strong",
        },
        {"type": "correlation", "x": "dose", "y": "recovery", "sign": "negative"},
        {
            "type": "group_difference",
            "column": "recovery",
            "group_by": "group",
            "a": "a",
            "b": "b",
            "direction": "greater",
        },
        {
            "type": "causal_effect",
            "treatment": "dose",
            "outcome": "recovery",
            "confounders": ["w"],
            "direction": "positive",
        },
        {
            "type": "causal_effect",
            "treatment": "dose",
            "outcome": "recovery",
            "confounders": ["w"],
            "direction": "negative",
        },
        {"type": "formula", "target": "E", "formula": "m*v**2/2"},
        {"type": "formula", "target": "E", "formula": "m*v"},
    ]
    response = fake_client.post(
        "/v1/ml/verify", headers=alice, json={"dataset_id": dataset_id, "claims": claims}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    verdicts = [r["verdict"] for r in body["results"]]
    assert verdicts == [
        "supported",
        "refuted",
        "supported",
        "supported",
        "refuted",
        "supported",
        "supported",
        "refuted",
        "supported",
        "refuted",
    ]
    causal = body["results"][6]
    assert abs(causal["value"] - 1.5) < 0.3
    assert causal["evidence"]["ci"][0] < 1.5 < causal["evidence"]["ci"][1]
    assert body["supported"] == 6 and body["refuted"] == 4


def test_bad_claims_name_the_field(fake_client: TestClient, alice: dict) -> None:
    dataset_id = upload_frame(fake_client, alice, _data())

    def verify(claim: dict) -> tuple[int, str | None]:
        response = fake_client.post(
            "/v1/ml/verify", headers=alice, json={"dataset_id": dataset_id, "claims": [claim]}
        )
        return response.status_code, response.json().get("error", {}).get("param")

    assert verify({"type": "mean", "column": "nope", "value": 1}) == (422, "claims[0].column")
    assert verify({"type": "mean", "column": "group", "value": 1}) == (422, "claims[0].column")
    assert verify({"type": "formula", "target": "E", "formula": "__import__('os')"}) == (
        422,
        "claims[0].formula",
    )
    assert verify({"type": "formula", "target": "E", "formula": "m*q"}) == (
        422,
        "claims[0].formula",
    )
    status, _ = verify({"type": "telepathy", "column": "w"})
    assert status == 422
