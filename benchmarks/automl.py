"""AutoML on scikit-learn's bundled datasets: the ML service (upload, job, predict over HTTP,
in process) versus FLAML called directly versus a RandomForest, same split, same budget.

Test metric: accuracy (classification) or R^2 (regression) on a 25% test split the service
never sees. Prints one JSON line.

    nice -n 10 .venv/bin/python benchmarks/automl.py [--budget 10]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

DATASETS = {
    "iris": (datasets.load_iris, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "digits": (datasets.load_digits, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
}


def _score(task: str, y_true: Any, y_pred: Any) -> float:
    return float(
        accuracy_score(y_true, y_pred) if task == "classification" else r2_score(y_true, y_pred)
    )


def _service_run(
    client: Any, headers: Any, train: pd.DataFrame, test: pd.DataFrame, task: str, budget: float
) -> list[Any]:
    up = client.post(
        "/v1/ml/datasets",
        headers=headers(),
        files={"file": ("train.csv", io.BytesIO(train.to_csv(index=False).encode()), "text/csv")},
    )
    up.raise_for_status()
    job = client.post(
        "/v1/ml/automl",
        headers=headers(),
        json={
            "dataset_id": up.json()["id"],
            "target": "target",
            "task": task,
            "time_budget_s": budget,
        },
    ).json()
    while job["status"] in ("queued", "running"):
        time.sleep(0.5)
        job = client.get(f"/v1/ml/jobs/{job['id']}", headers=headers()).json()
    if job["status"] != "succeeded":
        raise RuntimeError(job["error"])
    rows = test.drop(columns=["target"]).to_dict(orient="records")
    pred = client.post(
        f"/v1/ml/models/{job['result']['model_id']}/predict", headers=headers(), json={"rows": rows}
    )
    pred.raise_for_status()
    return pred.json()["predictions"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=10.0)
    args = parser.parse_args()
    os.environ["NEMO_DATA_DIR"] = tempfile.mkdtemp(prefix="nemo-bench-")
    os.environ["NEMO_SECRETS_DIR"] = os.path.join(os.environ["NEMO_DATA_DIR"], "none")
    from fastapi.testclient import TestClient
    from flaml import AutoML

    from nemo_server.common.testing import ALICE, internal_headers
    from nemo_server.ml.app import create_app
    from nemo_server.ml.engines.automl import CLASSIFIERS, REGRESSORS
    from nemo_server.ml.settings import MLSettings

    settings = MLSettings()

    def headers() -> dict[str, str]:  # internal tokens live a minute: mint one per call
        return internal_headers(settings.common, ALICE)

    rows: list[dict[str, Any]] = []
    with TestClient(create_app(settings)) as client:
        for name, (loader, task) in DATASETS.items():
            bunch = loader(as_frame=True)
            frame = bunch.frame.rename(columns={bunch.frame.columns[-1]: "target"})
            frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
            train, test = train_test_split(
                frame,
                test_size=0.25,
                random_state=0,
                stratify=frame["target"] if task == "classification" else None,
            )
            X_tr, y_tr = train.drop(columns=["target"]), train["target"]
            X_te, y_te = test.drop(columns=["target"]), test["target"]
            began = time.monotonic()
            service = _score(
                task, y_te, _service_run(client, headers, train, test, task, args.budget)
            )
            t_service = time.monotonic() - began
            began = time.monotonic()
            automl = AutoML()
            automl.fit(
                X_tr,
                y_tr,
                task=task,
                time_budget=args.budget,
                verbose=0,
                log_file_name="",
                n_jobs=1,
                seed=0,
                estimator_list=CLASSIFIERS if task == "classification" else REGRESSORS,
            )
            flaml_score = _score(task, y_te, automl.predict(X_te))
            t_flaml = time.monotonic() - began
            began = time.monotonic()
            rf_cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
            rf = rf_cls(n_estimators=200, random_state=0, n_jobs=1).fit(X_tr, y_tr)
            rf_score = _score(task, y_te, rf.predict(X_te))
            t_rf = time.monotonic() - began
            row = {
                "dataset": name,
                "task": task,
                "metric": "accuracy" if task == "classification" else "r2",
                "service": round(service, 4),
                "flaml": round(flaml_score, 4),
                "random_forest": round(rf_score, 4),
                "seconds": {
                    "service": round(t_service, 1),
                    "flaml": round(t_flaml, 1),
                    "random_forest": round(t_rf, 1),
                },
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    mean = {
        k: round(float(np.mean([r[k] for r in rows])), 4)
        for k in ("service", "flaml", "random_forest")
    }
    print(
        json.dumps(
            {
                "benchmark": "automl",
                "budget_s": args.budget,
                "mean_score": mean,
                "service_minus_rf": round(mean["service"] - mean["random_forest"], 4),
                "results": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
