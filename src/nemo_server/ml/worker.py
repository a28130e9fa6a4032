"""What a worker process runs: load the dataset, call the engine the job names."""

from __future__ import annotations

import importlib
from typing import Any

from nemo_server.ml.jobs import Progress, TaskError

# kind -> "module:function"; modules are imported in the worker process only.
TASKS: dict[str, str] = {
    "automl": "nemo_server.ml.engines.automl:run_automl",
    "symbolic_regression": "nemo_server.ml.engines.symbolic:run_symbolic",
    "causal": "nemo_server.ml.engines.causal:run_causal",
}


def run_task(payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Run one job's task in this (worker) process and return its JSON result."""
    import pandas as pd

    kind = payload["kind"]
    if kind not in TASKS:
        raise TaskError(f"unknown job kind {kind!r}")
    module_name, _, func_name = TASKS[kind].partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    frame = pd.read_parquet(payload["dataset_path"])
    progress(0.01, "dataset loaded")
    return func(frame, payload, progress)
