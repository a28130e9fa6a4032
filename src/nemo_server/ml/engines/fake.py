"""A fake task for unit tests: sleeps in small steps, reports progress, returns a tiny result."""

from __future__ import annotations

import time
from typing import Any

from nemo_server.ml.jobs import Progress, TaskError


def run_task(payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Sleep `request.time_budget_s` (default 0.2 s) in ten steps; fail when the target says so."""
    request = payload["request"]
    if request.get("target") == "explode":
        raise TaskError("the fake engine was asked to fail")
    seconds = float(request.get("time_budget_s") or 0.2)
    for step in range(10):
        time.sleep(seconds / 10)
        progress((step + 1) / 10, f"step {step + 1} of 10")
    return {"kind": payload["kind"], "echo": request, "pid_differs": True}
