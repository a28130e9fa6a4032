"""A fake engine for unit tests: words are tokens, replies are scripted, timing is controllable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from nemo_server.llm.engines.base import (
    EngineOptions,
    GenerationChunk,
    GenerationRequest,
    GrammarError,
    ModelSpec,
)


class FakeModel:
    """Implements `LoadedModel` without a model: one word of the reply per token."""

    def __init__(
        self,
        name: str = "fake",
        *,
        reply: str = "Hello from the fake model.",
        n_ctx: int = 64,
        n_slots: int = 2,
        token_delay_s: float = 0.0,
        device: str = "cpu",
        vram_mb: int = 0,
    ) -> None:
        self.name = name
        self.reply = reply
        self.n_ctx = n_ctx
        self.n_slots = n_slots
        self.token_delay_s = token_delay_s
        self.device = device
        self.vram_mb = vram_mb
        self.requests: list[GenerationRequest] = []
        self.active = 0
        self.max_active = 0
        self.cancelled = 0
        self.closed = False

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        return [len(word) for word in text.split()]

    def render_chat(self, messages: list[dict[str, Any]]) -> str:
        if messages and messages[-1]["role"] == "assistant":
            raise ValueError("the model's chat template rejected the messages: ends with assistant")
        lines = [f"<{m['role']}> {m['content']}" for m in messages]
        return "\n".join([*lines, "<assistant>"])

    def compile_json_schema(self, schema: dict[str, Any]) -> str:
        if schema.get("type") not in ("object", "array", "string", "number", "integer", "boolean"):
            raise GrammarError("the JSON schema cannot be enforced: unknown type")
        return "root ::= " + json.dumps(json.dumps({"answer": "fake"}))

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.requests.append(request)
        words = self.reply.split(" ")
        if request.sampling.grammar:
            words = [json.dumps({"answer": "fake"})]
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        finished = False
        try:
            text = ""
            budget = min(request.max_tokens, self.n_ctx - len(request.prompt_tokens))
            for i, word in enumerate(words):
                if self.token_delay_s:
                    await asyncio.sleep(self.token_delay_s)
                piece = word if i == 0 else " " + word
                text += piece
                stop_at = min((text.find(s) for s in request.stop if s in text), default=-1)
                if stop_at >= 0:
                    finished = True
                    yield GenerationChunk(
                        piece[: len(piece) - (len(text) - stop_at)], i + 1, "stop"
                    )
                    return
                if i + 1 >= budget:
                    finished = True
                    yield GenerationChunk(piece, i + 1, "length")
                    return
                last = i + 1 == len(words)
                finished = last
                yield GenerationChunk(piece, i + 1, "stop" if last else None)
        finally:
            self.active -= 1
            if not finished:
                self.cancelled += 1

    def stats(self) -> dict[str, int]:
        return {"active": self.active, "queued": 0}

    def close(self) -> None:
        self.closed = True


def build(spec: ModelSpec, options: EngineOptions) -> FakeModel:
    """Registry entry: a fake model named like the spec."""
    return FakeModel(spec.name, n_slots=options.n_slots)
