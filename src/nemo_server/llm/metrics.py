"""Prometheus figures of the LLM service (on the app's own registry, served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class LlmMetrics:
    """Tokens, finished generations and time to first token, per model."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.prompt_tokens = Counter(
            "nemo_llm_prompt_tokens_total",
            "Prompt tokens of generations",
            ["model"],
            registry=registry,
        )
        self.completion_tokens = Counter(
            "nemo_llm_completion_tokens_total",
            "Generated tokens",
            ["model"],
            registry=registry,
        )
        self.generations = Counter(
            "nemo_llm_generations_total",
            "Generations by how they ended",
            ["model", "finish_reason"],
            registry=registry,
        )
        self.ttft = Histogram(
            "nemo_llm_time_to_first_token_seconds",
            "From the checked request to its first token",
            ["model"],
            registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(model).observe(seconds)

    def finished(self, model: str, prompt: int, completion: int, reason: str) -> None:
        self.prompt_tokens.labels(model).inc(prompt)
        self.completion_tokens.labels(model).inc(completion)
        self.generations.labels(model, reason).inc()
