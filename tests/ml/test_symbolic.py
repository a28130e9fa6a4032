"""Symbolic regression: exact recovery by the project's engine, the gplearn baseline, shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sympy
from fastapi.testclient import TestClient

from nemo_server.ml.engines.symbolic import solve
from tests.ml.conftest import upload_frame, wait_job


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"m": rng.uniform(1, 5, n), "v": rng.uniform(1, 5, n), "h": rng.uniform(1, 5, n)}
    )
    frame["E"] = 0.5 * frame["m"] * frame["v"] ** 2 + 9.81 * frame["m"] * frame["h"]
    return frame


def test_nemo_engine_recovers_energy_exactly(real_client: TestClient, alice: dict) -> None:
    dataset_id = upload_frame(real_client, alice, _frame())
    job = real_client.post(
        "/v1/ml/symbolic-regression",
        headers=alice,
        json={"dataset_id": dataset_id, "target": "E", "time_budget_s": 4, "engine": "nemo"},
    )
    assert job.status_code == 202, job.text
    done = wait_job(real_client, alice, job.json()["id"])
    assert done["status"] == "succeeded", done
    best = done["result"]["best"]
    assert set(best) >= {"formula", "latex", "complexity", "error"}
    m, v, h = sympy.symbols("m v h")
    found = sympy.sympify(best["formula"], locals={"m": m, "v": v, "h": h})
    truth = m * v**2 / 2 + sympy.Rational(981, 100) * m * h
    assert sympy.simplify(found - truth) == 0, best["formula"]
    assert best["error"] < 1e-9
    front = done["result"]["pareto"]
    assert best in front
    complexities = [p["complexity"] for p in front]
    errors = [p["error"] for p in front]
    assert complexities == sorted(complexities) and errors == sorted(errors, reverse=True)


def test_gplearn_baseline_through_the_api(real_client: TestClient, alice: dict) -> None:
    dataset_id = upload_frame(real_client, alice, _frame(100))
    job = real_client.post(
        "/v1/ml/symbolic-regression",
        headers=alice,
        json={
            "dataset_id": dataset_id,
            "target": "E",
            "features": ["m", "v"],
            "time_budget_s": 2,
            "engine": "gplearn",
        },
    )
    done = wait_job(real_client, alice, job.json()["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["engine"] == "gplearn"
    sympy.sympify(done["result"]["best"]["formula"])
    assert done["result"]["best"]["latex"]


def test_noisy_power_law_is_recovered() -> None:
    rng = np.random.default_rng(4)
    X = rng.uniform(1, 5, size=(300, 3))
    y = X[:, 0] * X[:, 1] / (4 * np.pi * X[:, 2] ** 2)
    y = y * (1 + 0.01 * rng.normal(size=len(y)))
    result = solve("nemo", X, y, ["q1", "q2", "r"], time_budget_s=3)
    q1, q2, r = sympy.symbols("q1 q2 r")
    found = sympy.sympify(result["best"]["formula"], locals={"q1": q1, "q2": q2, "r": r})
    assert sympy.simplify(found - q1 * q2 / (4 * sympy.pi * r**2)) == 0, result["best"]
