"""Prometheus metrics of the coordinator, in the app's own registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CoordinatorMetrics:
    """Grant wait time, grants, pre-emptions, revocations and VRAM figures.

    With several replicas each counts the transitions it applied; sum them in Prometheus.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.wait = Histogram(
            "nemo_gpu_lease_wait_seconds",
            "Time from lease request to grant",
            ["priority"],
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.grants = Counter(
            "nemo_gpu_lease_grants_total", "Leases granted", ["priority"], registry=registry
        )
        self.preemptions = Counter(
            "nemo_gpu_preemptions_total",
            "Holders asked to yield, by the holder's priority",
            ["priority"],
            registry=registry,
        )
        self.revocations = Counter(
            "nemo_gpu_revocations_total",
            "Leases revoked (no heartbeat, or no yield in grace)",
            ["reason"],
            registry=registry,
        )
        self.releases = Counter(
            "nemo_gpu_lease_releases_total",
            "Leases ended by their holder",
            ["reason"],
            registry=registry,
        )
        self.budget = Gauge("nemo_gpu_vram_budget_mb", "VRAM budget", registry=registry)
        self.used = Gauge("nemo_gpu_vram_leased_mb", "VRAM held by leases", registry=registry)
        self.queue = Gauge("nemo_gpu_queue_length", "Requests waiting", registry=registry)

    def on_event(self, kind: str, view: dict[str, Any]) -> None:
        """Sink for the state machine's events."""
        priority = str(view.get("priority", ""))
        if kind == "granted":
            self.grants.labels(priority).inc()
            self.wait.labels(priority).observe(max(0.0, float(view.get("wait_s", 0.0))))
        elif kind == "preempt_requested":
            self.preemptions.labels(priority).inc()
        elif kind == "revoked":
            self.revocations.labels(str(view.get("reason", ""))).inc()
        elif kind == "released":
            self.releases.labels(str(view.get("reason", ""))).inc()

    def observe_status(self, status: dict[str, Any]) -> None:
        self.budget.set(status["budget_mb"])
        self.used.set(status["used_mb"])
        self.queue.set(len(status["queue"]))
