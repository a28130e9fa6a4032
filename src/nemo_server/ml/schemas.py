"""Request and response models of the ML service (no logic)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Task = Literal["classification", "regression"]
Learner = Literal["lgbm", "xgboost", "rf", "extra_tree", "lrl1"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnInfo(BaseModel):
    """One column of a dataset, with its inferred type and a few statistics."""

    name: str
    dtype: Literal["integer", "float", "boolean", "datetime", "categorical", "string"]
    nulls: int
    unique: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None


class DatasetOut(BaseModel):
    id: str
    object: Literal["dataset"] = "dataset"
    name: str
    format: str
    rows: int
    n_columns: int
    size_bytes: int
    columns: list[ColumnInfo]
    created_at: datetime


class DatasetList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DatasetOut]


class Preview(BaseModel):
    dataset_id: str
    columns: list[str]
    rows: list[dict[str, Any]]


class RunRequest(Strict):
    """Fields every job request shares."""

    dataset_id: str = Field(min_length=1, max_length=64, description="A dataset of this user.")
    target: str = Field(min_length=1, description="Column to predict or explain.")
    features: list[str] | None = Field(
        default=None, min_length=1, description="Input columns; default every other column."
    )
    time_budget_s: float | None = Field(
        default=None, gt=0, description="Seconds the search may run (default from settings)."
    )
    seed: int = Field(default=0, ge=0, description="Random seed, for repeatable runs.")


class AutoMLRequest(RunRequest):
    """`POST /v1/ml/automl`: FLAML over lgbm, xgboost, rf, extra_tree (and lrl1)."""

    task: Task | None = Field(default=None, description="Inferred from the target when omitted.")
    estimators: list[Learner] | None = Field(default=None, min_length=1)
    holdout_fraction: float = Field(default=0.2, ge=0.05, le=0.5)


class SymbolicRequest(RunRequest):
    """`POST /v1/ml/symbolic-regression`: closed-form formulas for `target`."""

    engine: Literal["nemo", "gplearn"] | None = Field(
        default=None, description="`nemo` (the project's search) or `gplearn` (baseline)."
    )
    max_rows: int = Field(default=2000, ge=10, le=100_000, description="Rows sampled for search.")


class CausalRequest(Strict):
    """`POST /v1/ml/causal`: the effect of `treatment` on `outcome` with DoWhy."""

    dataset_id: str = Field(min_length=1, max_length=64)
    treatment: str = Field(min_length=1)
    outcome: str = Field(min_length=1)
    confounders: list[str] | None = Field(default=None, description="Common causes to adjust.")
    graph: list[Annotated[list[str], Field(min_length=2, max_length=2)]] | None = Field(
        default=None, description="Causal graph as directed edges `[[cause, effect], ...]`."
    )
    discover: bool = Field(default=False, description="Also run causal-learn's PC discovery.")
    method: Literal[
        "linear_regression", "propensity_score_weighting", "propensity_score_matching"
    ] = "linear_regression"
    refutations: list[Literal["placebo_treatment", "random_common_cause", "data_subset"]] = Field(
        default=["placebo_treatment", "random_common_cause", "data_subset"]
    )
    confidence_level: float = Field(default=0.95, gt=0.5, lt=1.0)
    time_budget_s: float | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0)


class JobOut(BaseModel):
    """A job: `status` is queued, running, succeeded, failed or cancelled."""

    id: str
    object: Literal["ml.job"] = "ml.job"
    kind: str
    status: JobStatus
    progress: float
    message: str | None = None
    dataset_id: str | None = None
    request: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobOut]


class ModelOut(BaseModel):
    id: str
    object: Literal["ml.model"] = "ml.model"
    job_id: str
    dataset_id: str
    task: str
    target: str
    features: list[str]
    info: dict[str, Any]
    created_at: datetime


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class PredictRequest(Strict):
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)
    probabilities: bool = Field(default=False, description="Classification: class probabilities.")


class PredictResponse(BaseModel):
    model_id: str
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None = None


Op = Literal["eq", "approx", "gt", "ge", "lt", "le"]


class _Claim(Strict):
    tolerance: float = Field(default=0.05, ge=0, description="Relative tolerance for eq/approx.")


class MeanClaim(_Claim):
    type: Literal["mean", "median", "sum", "min", "max", "std"]
    column: str
    op: Op = "approx"
    value: float


class ShareClaim(_Claim):
    """Share of rows where `column` equals `equals` (or, numeric, lies within [gt, lt])."""

    type: Literal["share"]
    column: str
    equals: Any = None
    op: Op = "approx"
    value: float = Field(ge=0, le=1)


class CorrelationClaim(_Claim):
    type: Literal["correlation"]
    x: str
    y: str
    sign: Literal["positive", "negative", "none"]
    strength: Literal["any", "weak", "moderate", "strong"] = "any"
    method: Literal["pearson", "spearman"] = "pearson"
    alpha: float = Field(default=0.05, gt=0, lt=1)


class GroupDifferenceClaim(_Claim):
    """The mean of `column` is higher (`greater`) in group `a` than in group `b` of `group_by`."""

    type: Literal["group_difference"]
    column: str
    group_by: str
    a: Any
    b: Any
    direction: Literal["greater", "less", "equal"]
    alpha: float = Field(default=0.05, gt=0, lt=1)


class CausalClaim(_Claim):
    type: Literal["causal_effect"]
    treatment: str
    outcome: str
    confounders: list[str] = Field(default_factory=list)
    direction: Literal["positive", "negative", "none"]
    alpha: float = Field(default=0.05, gt=0, lt=1)


class FormulaClaim(_Claim):
    """`target` equals `formula` (sympy syntax over column names) within `tolerance` (NRMSE)."""

    type: Literal["formula"]
    target: str
    formula: str = Field(min_length=1, max_length=2000)


Claim = Annotated[
    MeanClaim | ShareClaim | CorrelationClaim | GroupDifferenceClaim | CausalClaim | FormulaClaim,
    Field(discriminator="type"),
]


class VerifyRequest(Strict):
    """`POST /v1/ml/verify`: structured claims checked against one dataset."""

    dataset_id: str = Field(min_length=1, max_length=64)
    claims: list[Claim] = Field(min_length=1, max_length=100)


class ClaimResult(BaseModel):
    index: int
    type: str
    verdict: Literal["supported", "refuted", "inconclusive"]
    value: Any = None
    evidence: dict[str, Any]


class VerifyResponse(BaseModel):
    dataset_id: str
    results: list[ClaimResult]
    supported: int
    refuted: int
    inconclusive: int
