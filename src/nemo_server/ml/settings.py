"""Settings of the ML service (env prefix `NEMO_ML_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings


class MLSettings(ServiceSettings):
    """Limits and engine choices of the ML service."""

    model_config = SettingsConfigDict(env_prefix="NEMO_ML_", extra="ignore")

    max_body_bytes: int = Field(
        default=64 << 20, ge=1024, description="Largest request body (dataset uploads), in bytes."
    )
    max_dataset_bytes: int = Field(
        default=50 << 20, ge=1024, description="Largest dataset file accepted on upload, in bytes."
    )
    max_rows: int = Field(default=1_000_000, ge=10, description="Most rows a dataset may have.")
    max_columns: int = Field(default=500, ge=2, description="Most columns a dataset may have.")
    max_datasets_per_user: int = Field(
        default=200, ge=1, description="Most datasets one user may keep."
    )
    min_rows: int = Field(
        default=10,
        ge=2,
        description="Fewest rows a dataset needs for AutoML, regression or causal.",
    )
    max_time_budget_s: float = Field(
        default=600.0, gt=0, description="Largest `time_budget_s` a job may ask for."
    )
    default_time_budget_s: float = Field(
        default=30.0, gt=0, description="Time budget of a job that names none."
    )
    workers: int = Field(
        default=1, ge=1, le=64, description="Jobs run at the same time, each in its own process."
    )
    worker_nice: int = Field(
        default=5, ge=0, le=19, description="Niceness added to worker processes (API stays snappy)."
    )
    symbolic_engine: Literal["nemo", "gplearn"] = Field(
        default="nemo", description="Default symbolic-regression engine: `nemo` or `gplearn`."
    )
    refutation_simulations: int = Field(
        default=20, ge=2, le=500, description="Simulations per DoWhy refutation."
    )
    data_subdir: Path = Field(
        default=Path("ml"), description="Folder under the data dir holding dataset and model files."
    )
    model_cache_size: int = Field(
        default=8, ge=0, description="Trained models kept loaded in memory for predictions."
    )

    def storage_dir(self) -> Path:
        """Where dataset and model files live."""
        return self.common.data_dir / self.data_subdir
