"""AutoML with FLAML over lgbm, xgboost, rf, extra_tree and (classification) lrl1.

The worker process fits and pickles a bundle (the FLAML object, the feature list, dtypes and the
class labels); the API process loads bundles to predict, returning the original labels.
"""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nemo_server.ml.jobs import Progress, TaskError

if TYPE_CHECKING:
    import pandas as pd

CLASSIFIERS = ["lgbm", "xgboost", "rf", "extra_tree", "lrl1"]
REGRESSORS = ["lgbm", "xgboost", "rf", "extra_tree"]


def prepare_features(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Model inputs: datetimes become epoch seconds, text becomes pandas categories."""
    import pandas as pd

    X = frame[features].copy()
    for name in features:
        col = X[name]
        if pd.api.types.is_datetime64_any_dtype(col):
            X[name] = col.astype("int64") / 1e9
        elif pd.api.types.is_bool_dtype(col):
            X[name] = col.astype(float)
        elif not pd.api.types.is_numeric_dtype(col):
            X[name] = col.astype(str).where(col.notna(), None).astype("category")
    return X


def _split(X: Any, y: Any, fraction: float, seed: int, stratify: bool) -> tuple[Any, ...]:
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(
            X, y, test_size=fraction, random_state=seed, stratify=y if stratify else None
        )
    except ValueError:  # a class with one member cannot be stratified
        return train_test_split(X, y, test_size=fraction, random_state=seed)


def _metrics(task: str, model: Any, X: Any, y: Any, n_classes: int) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    pred = model.predict(X)
    if task == "regression":
        return {
            "r2": float(metrics.r2_score(y, pred)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
            "mae": float(metrics.mean_absolute_error(y, pred)),
        }
    out = {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "f1_macro": float(metrics.f1_score(y, pred, average="macro")),
    }
    try:
        proba = model.predict_proba(X)
        labels = list(range(n_classes))
        out["log_loss"] = float(metrics.log_loss(y, proba, labels=labels))
        if n_classes == 2:
            out["roc_auc"] = float(metrics.roc_auc_score(y, proba[:, 1]))
        else:
            out["roc_auc"] = float(
                metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
            )
    except (ValueError, AttributeError, IndexError):
        pass  # one class in the holdout, or a learner without probabilities
    return out


def _importances(model: Any, X: Any, y: Any, task: str, seed: int) -> list[dict[str, Any]]:
    from sklearn.inspection import permutation_importance

    if len(X) > 2000:
        X, y = X.sample(2000, random_state=seed), y.loc[X.index] if hasattr(y, "loc") else y
    scoring = "r2" if task == "regression" else "accuracy"
    result = permutation_importance(model, X, y, n_repeats=3, random_state=seed, scoring=scoring)
    pairs = sorted(zip(X.columns, result.importances_mean, strict=True), key=lambda p: -float(p[1]))
    return [{"feature": str(name), "importance": float(value)} for name, value in pairs]


class _Ticker:
    """Reports elapsed / budget as progress while FLAML runs (it has no callback)."""

    def __init__(self, progress: Progress, budget: float) -> None:
        self.progress, self.budget = progress, budget
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self.done.wait(0.5):
            frac = min(0.9, 0.05 + 0.85 * (time.monotonic() - start) / self.budget)
            self.progress(frac, "searching models")

    def __enter__(self) -> _Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def run_automl(frame: pd.DataFrame, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Fit FLAML within the budget; score on a holdout; pickle the bundle to `model_path`."""
    import numpy as np
    from flaml import AutoML

    req = payload["request"]
    target, features, task = req["target"], req["features"], req["task"]
    budget, seed = float(req["time_budget_s"]), int(req.get("seed") or 0)
    data = frame[[*features, target]].dropna(subset=[target])
    X = prepare_features(data, features)
    classes: list[Any] = []
    if task == "classification":
        codes, uniques = data[target].factorize(sort=True)
        if len(uniques) < 2:
            raise TaskError(f"target {target!r} has a single class")
        classes = [v.item() if hasattr(v, "item") else v for v in uniques]
        y = np.asarray(codes)
    else:
        y = data[target].astype(float).to_numpy()
    X_tr, X_te, y_tr, y_te = _split(
        X, y, float(req.get("holdout_fraction", 0.2)), seed, task == "classification"
    )
    estimators = req.get("estimators") or (CLASSIFIERS if task == "classification" else REGRESSORS)
    estimators = [e for e in estimators if task == "classification" or e != "lrl1"]
    if not estimators:
        raise TaskError("lrl1 is a classifier; name a regression learner")
    automl = AutoML()
    progress(0.05, "searching models")
    with _Ticker(progress, budget):
        automl.fit(
            X_train=X_tr,
            y_train=y_tr,
            task=task,
            time_budget=budget,
            estimator_list=estimators,
            seed=seed,
            n_jobs=1,
            verbose=0,
            log_file_name="",
            retrain_full=True,
        )
    if automl.best_estimator is None:
        raise TaskError("no model finished within the time budget; raise time_budget_s")
    progress(0.92, "scoring the holdout")
    holdout = _metrics(task, automl, X_te, y_te, len(classes))
    importances = _importances(automl, X_te, y_te, task, seed) if len(X_te) >= 2 else []
    leaderboard = sorted(
        (
            {
                "estimator": name,
                "loss": float(loss),
                "config": automl.best_config_per_estimator.get(name),
            }
            for name, loss in automl.best_loss_per_estimator.items()
            if loss is not None and np.isfinite(loss)
        ),
        key=lambda row: row["loss"],
    )
    bundle = {
        "automl": automl,
        "features": features,
        "task": task,
        "classes": classes,
        "dtypes": {name: str(X[name].dtype) for name in features},
    }
    path = Path(payload["model_path"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("wb") as handle:
        pickle.dump(bundle, handle)
    return {
        "model_id": payload["model_id"],
        "task": task,
        "target": target,
        "features": features,
        "best_estimator": automl.best_estimator,
        "best_config": automl.best_config,
        "best_validation_loss": float(automl.best_loss),
        "leaderboard": leaderboard,
        "holdout": holdout,
        "feature_importances": importances,
        "classes": classes,
        "n_train": len(X_tr),
        "n_holdout": len(X_te),
        "metric": automl._state.metric
        if isinstance(getattr(automl._state, "metric", None), str)
        else "auto",
    }


def load_bundle(path: str) -> dict[str, Any]:
    """A bundle this service wrote (only files under its own data dir are ever loaded)."""
    with open(path, "rb") as handle:
        return pickle.load(handle)


def predict(
    bundle: dict[str, Any], rows: list[dict[str, Any]], probabilities: bool
) -> tuple[list[Any], list[dict[str, float]] | None]:
    """Predictions in the target's original labels; raises KeyError/ValueError on bad rows."""
    import pandas as pd

    features: list[str] = bundle["features"]
    frame = pd.DataFrame.from_records(rows, columns=features)
    for name, dtype in bundle["dtypes"].items():
        if dtype == "category":
            frame[name] = frame[name].astype(str).where(frame[name].notna(), None)
            frame[name] = frame[name].astype("category")
        else:
            frame[name] = pd.to_numeric(frame[name], errors="raise").astype(float)
    automl = bundle["automl"]
    raw = automl.predict(frame)
    if bundle["task"] == "regression":
        return [float(v) for v in raw], None
    classes = bundle["classes"]
    preds = [classes[int(v)] for v in raw]
    probs = None
    if probabilities:
        matrix = automl.predict_proba(frame)
        probs = [{str(classes[j]): float(p) for j, p in enumerate(row)} for row in matrix]
    return preds, probs
