"""The ML use cases: validate requests, start jobs, store models, predict, verify (no FastAPI)."""

from __future__ import annotations

import keyword
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nemo_server.common.db import Database
from nemo_server.common.errors import NotFound, Unprocessable
from nemo_server.ml import schemas
from nemo_server.ml.datasets import DatasetStore, check_columns, is_numeric
from nemo_server.ml.jobs import JobRunner, JobStore
from nemo_server.ml.models import DatasetRow, JobRow, ModelRow
from nemo_server.ml.settings import MLSettings


class MLService:
    """Datasets, jobs, models and verification for one user at a time."""

    def __init__(
        self, settings: MLSettings, db: Database, runner: JobRunner, datasets: DatasetStore
    ) -> None:
        self.settings = settings
        self.db = db
        self.runner = runner
        self.jobs: JobStore = runner.store
        self.datasets = datasets
        self._models: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # --- validation shared by every job -------------------------------------------------------
    def _budget(self, value: float | None) -> float:
        budget = value if value is not None else self.settings.default_time_budget_s
        if budget > self.settings.max_time_budget_s:
            raise Unprocessable(
                f"time_budget_s: {budget} is over the limit of {self.settings.max_time_budget_s} s",
                param="time_budget_s",
            )
        return float(budget)

    def _dataset(self, user_id: str, dataset_id: str) -> DatasetRow:
        row = self.datasets.get(user_id, dataset_id)
        if row.n_rows < self.settings.min_rows:
            raise Unprocessable(
                f"dataset_id: the dataset has {row.n_rows} rows; at least "
                f"{self.settings.min_rows} are needed",
                param="dataset_id",
            )
        return row

    def _features(
        self, row: DatasetRow, target: str, features: list[str] | None, *, numeric: bool
    ) -> list[str]:
        check_columns(row, [target], "target")
        if features is None:
            features = [
                c["name"]
                for c in row.columns
                if c["name"] != target and (not numeric or is_numeric(c))
            ]
            if not features:
                raise Unprocessable(
                    "features: the dataset has no usable feature columns", param="features"
                )
        if target in features:
            raise Unprocessable(f"features: {target!r} is the target", param="features")
        if len(set(features)) != len(features):
            raise Unprocessable("features: a column is named twice", param="features")
        check_columns(row, features, "features", numeric=numeric)
        return features

    def _start(
        self,
        user_id: str,
        kind: str,
        row: DatasetRow,
        request: dict[str, Any],
        extra: dict[str, Any] | None = None,
        finalize: Any = None,
    ) -> JobRow:
        job = self.jobs.create(user_id, kind, row.id, request, self.runner.runner_id)
        payload = {
            "kind": kind,
            "job_id": job.id,
            "dataset_path": row.path,
            "request": request,
            **(extra or {}),
        }
        hard = float(request.get("time_budget_s") or 60) * 3 + 120
        self.runner.submit(job.id, payload, finalize, hard_timeout_s=hard)
        return job

    # --- jobs ----------------------------------------------------------------------------------
    def start_automl(self, user_id: str, req: schemas.AutoMLRequest) -> JobRow:
        budget = self._budget(req.time_budget_s)
        row = self._dataset(user_id, req.dataset_id)
        features = self._features(row, req.target, req.features, numeric=False)
        column = next(c for c in row.columns if c["name"] == req.target)
        task = req.task or (
            "regression"
            if column["dtype"] == "float"
            or (column["dtype"] == "integer" and column["unique"] > 20)
            else "classification"
        )
        if task == "regression" and not is_numeric(column):
            raise Unprocessable(
                f"target: {req.target!r} is {column['dtype']}; regression needs a numeric target",
                param="target",
            )
        if task == "classification" and column["unique"] < 2:
            raise Unprocessable(
                f"target: {req.target!r} has fewer than two classes", param="target"
            )
        if task == "regression" and req.estimators == ["lrl1"]:
            raise Unprocessable("estimators: lrl1 is a classifier only", param="estimators")
        request = req.model_dump() | {"features": features, "task": task, "time_budget_s": budget}
        model_id = "mdl_" + uuid.uuid4().hex[:24]
        path = self.settings.storage_dir() / "models" / f"{model_id}.pkl"

        def finalize(job: JobRow, result: dict[str, Any]) -> dict[str, Any]:
            info = {k: result.get(k) for k in ("best_estimator", "holdout", "classes", "metric")}
            with self.db.session() as session:
                session.add(
                    ModelRow(
                        id=model_id,
                        user_id=user_id,
                        job_id=job.id,
                        dataset_id=row.id,
                        task=task,
                        target=req.target,
                        features=features,
                        info=info,
                        path=str(path),
                    )
                )
            return result

        return self._start(
            user_id,
            "automl",
            row,
            request,
            {"model_id": model_id, "model_path": str(path)},
            finalize,
        )

    def start_symbolic(self, user_id: str, req: schemas.SymbolicRequest) -> JobRow:
        budget = self._budget(req.time_budget_s)
        row = self._dataset(user_id, req.dataset_id)
        check_columns(row, [req.target], "target")
        check_columns(row, [req.target], "target", numeric=True)
        features = self._features(row, req.target, req.features, numeric=True)
        if req.features is None:  # by default, columns a formula cannot name are left out
            features = [f for f in features if f.isidentifier() and not keyword.iskeyword(f)]
            if not features:
                raise Unprocessable(
                    "features: no numeric column has a name a formula can use", param="features"
                )
        for param, names in (("target", [req.target]), ("features", features)):
            bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n)]
            if bad:  # formulas must parse back with sympy over the column names
                raise Unprocessable(
                    f"{param}: column {bad[0]!r} is not a valid formula name; rename it "
                    "(letters, digits and _)",
                    param=param,
                )
        engine = req.engine or self.settings.symbolic_engine
        request = req.model_dump() | {
            "features": features,
            "time_budget_s": budget,
            "engine": engine,
        }
        return self._start(user_id, "symbolic_regression", row, request)

    def start_causal(self, user_id: str, req: schemas.CausalRequest) -> JobRow:
        budget = self._budget(req.time_budget_s)
        row = self._dataset(user_id, req.dataset_id)
        check_columns(row, [req.treatment], "treatment", numeric=True)
        check_columns(row, [req.outcome], "outcome", numeric=True)
        if req.treatment == req.outcome:
            raise Unprocessable("outcome: the outcome is the treatment", param="outcome")
        if req.confounders:
            check_columns(row, req.confounders, "confounders", numeric=True)
            if {req.treatment, req.outcome} & set(req.confounders):
                raise Unprocessable(
                    "confounders: treatment or outcome named as a confounder", param="confounders"
                )
        if req.method != "linear_regression":
            column = next(c for c in row.columns if c["name"] == req.treatment)
            if column["unique"] != 2:
                raise Unprocessable(
                    f"method: {req.method} needs a binary treatment; {req.treatment!r} has "
                    f"{column['unique']} values",
                    param="method",
                )
        if req.graph:
            check_columns(row, sorted({n for edge in req.graph for n in edge}), "graph")
        if not req.confounders and not req.graph and not req.discover:
            confounders = [
                c["name"]
                for c in row.columns
                if c["name"] not in (req.treatment, req.outcome) and is_numeric(c)
            ]
        else:
            confounders = req.confounders or []
        request = req.model_dump() | {
            "time_budget_s": budget,
            "confounders": confounders,
            "refutation_simulations": self.settings.refutation_simulations,
        }
        return self._start(user_id, "causal", row, request)

    # --- models --------------------------------------------------------------------------------
    def list_models(self, user_id: str) -> list[ModelRow]:
        with self.db.session() as session:
            query = select(ModelRow).where(ModelRow.user_id == user_id)
            return list(session.scalars(query.order_by(ModelRow.created_at.desc())))

    def get_model(self, user_id: str, model_id: str) -> ModelRow:
        with self.db.session() as session:
            row = session.get(ModelRow, model_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no model {model_id!r}", param="model_id")
        return row

    def delete_model(self, user_id: str, model_id: str) -> None:
        row = self.get_model(user_id, model_id)
        with self.db.session() as session:
            obj = session.get(ModelRow, row.id)
            if obj is not None:
                session.delete(obj)
        self._models.pop(model_id, None)
        Path(row.path).unlink(missing_ok=True)

    def predict(self, user_id: str, model_id: str, req: schemas.PredictRequest) -> dict[str, Any]:
        from nemo_server.ml.engines import automl

        row = self.get_model(user_id, model_id)
        for i, record in enumerate(req.rows):
            missing = [f for f in row.features if f not in record]
            if missing:
                raise Unprocessable(
                    f"rows[{i}]: missing column {missing[0]!r}", param=f"rows[{i}].{missing[0]}"
                )
        bundle = self._models.get(model_id)
        if bundle is None:
            bundle = automl.load_bundle(row.path)
            self._models[model_id] = bundle
            while len(self._models) > self.settings.model_cache_size:
                self._models.popitem(last=False)
        try:
            preds, probs = automl.predict(bundle, req.rows, req.probabilities)
        except (ValueError, TypeError) as exc:
            raise Unprocessable(
                f"rows: a value does not fit the model's columns: {exc}", param="rows"
            ) from None
        return {"model_id": model_id, "predictions": preds, "probabilities": probs}

    # --- verification --------------------------------------------------------------------------
    def verify(self, user_id: str, req: schemas.VerifyRequest) -> dict[str, Any]:
        from nemo_server.ml import verify

        row = self.datasets.get(user_id, req.dataset_id)
        for i, claim in enumerate(req.claims):
            for field, (names, numeric) in verify.claim_columns(claim).items():
                check_columns(row, names, f"claims[{i}].{field}", numeric=numeric)
        frame = self.datasets.load(row)
        results = [verify.check(i, claim, frame) for i, claim in enumerate(req.claims)]
        counts = {
            v: sum(1 for r in results if r["verdict"] == v)
            for v in ("supported", "refuted", "inconclusive")
        }
        return {"dataset_id": row.id, "results": results, **counts}
