"""The use cases: chat and text completion on a loaded model, and stored conversations."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from nemo_server.common.auth import Principal
from nemo_server.common.errors import BadRequest, NemoError, ServiceUnavailable
from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.conversations import ConversationStore
from nemo_server.llm.engines.base import (
    GenerationChunk,
    GenerationRequest,
    GrammarError,
    LoadedModel,
    RequestPriority,
    SamplingParams,
)
from nemo_server.llm.lifecycle import ModelManager
from nemo_server.llm.metrics import LlmMetrics
from nemo_server.llm.schemas import ChatCompletionRequest, CompletionRequest, ResponseFormat
from nemo_server.llm.settings import LlmSettings

# Prompts up to this size are templated and tokenized on the event loop (well under 1 ms).
INLINE_PROMPT_CHARS = 8000


@dataclass
class Run:
    """A generation that passed every check and may now stream; `aclose()` frees the model."""

    model: str
    prompt_tokens: int
    chunks: AsyncIterator[GenerationChunk]
    _stack: contextlib.AsyncExitStack
    completion_tokens: int = 0
    finish_reason: str | None = None
    text_parts: list[str] = field(default_factory=list)
    metrics: LlmMetrics | None = None
    started: float = field(default_factory=time.perf_counter)

    async def stream(self) -> AsyncIterator[GenerationChunk]:
        """Yield the chunks; the model is released when this ends or is closed."""
        try:
            async for chunk in self.chunks:
                if self.metrics is not None and not self.text_parts:
                    self.metrics.first_token(self.model, time.perf_counter() - self.started)
                self.completion_tokens = chunk.completion_tokens
                self.text_parts.append(chunk.text)
                if chunk.finish_reason is not None:
                    self.finish_reason = chunk.finish_reason
                yield chunk
        except NemoError:
            raise
        except Exception as exc:  # the model was unloaded under the request, a decode failed
            raise ServiceUnavailable(f"generation failed: {exc}", code="generation_failed") from exc
        finally:
            if self.metrics is not None:
                reason = self.finish_reason or "cancelled"
                self.metrics.finished(
                    self.model, self.prompt_tokens, self.completion_tokens, reason
                )
            await self.aclose()

    async def collect(self) -> str:
        async for _ in self.stream():
            pass
        return self.text

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.chunks.aclose()  # type: ignore[attr-defined]
        await self._stack.aclose()


class LlmService:
    """Prepares prompts, checks limits, runs generations, keeps conversations."""

    def __init__(
        self,
        settings: LlmSettings,
        catalog: ModelCatalog,
        models: ModelManager,
        conversations: ConversationStore,
        metrics: LlmMetrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.catalog = catalog
        self.models = models
        self.conversations = conversations

    async def start_chat(
        self, principal: Principal, body: ChatCompletionRequest, priority: RequestPriority
    ) -> tuple[Run, list[dict[str, Any]]]:
        """Check and start a chat; returns the run and the new messages to store afterwards."""
        new = [{"role": _role(m.role), "content": m.text()} for m in body.messages]
        history: list[dict[str, Any]] = []
        if body.conversation_id:
            stored = await run_in_threadpool(
                self.conversations.get, principal.user_id, body.conversation_id
            )
            history = [{"role": m.role, "content": m.content} for m in stored.messages]
            if body.model is None and stored.model:  # the conversation's own model
                body = body.model_copy(update={"model": stored.model})
        messages = history + new

        def prompt_of(model: LoadedModel) -> list[int]:
            try:
                text = model.render_chat(messages)
            except ValueError as exc:
                raise BadRequest(str(exc), param="messages") from None
            return model.tokenize(text)

        max_tokens = body.max_completion_tokens or body.max_tokens
        size = sum(len(m["content"]) for m in messages)
        run = await self._start(
            body, body.response_format, prompt_of, max_tokens, priority, "messages", size
        )
        return run, new

    async def start_completion(
        self, body: CompletionRequest, priority: RequestPriority
    ) -> tuple[Run, str]:
        """Check and start a plain completion; returns the run and the prompt text."""
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if len(prompts) != 1:
            raise BadRequest("exactly one prompt per request is supported", param="prompt")
        prompt = prompts[0]

        def prompt_of(model: LoadedModel) -> list[int]:
            return model.tokenize(prompt)

        run = await self._start(
            body, body.response_format, prompt_of, body.max_tokens, priority, "prompt", len(prompt)
        )
        return run, prompt

    async def _start(
        self,
        body: Any,
        response_format: ResponseFormat | None,
        prompt_of: Any,
        max_tokens: int | None,
        priority: RequestPriority,
        prompt_param: str,
        prompt_chars: int,
    ) -> Run:
        # Every hop to a worker thread costs a context switch (milliseconds on a busy CPU), so
        # the common case (model loaded, short prompt, no grammar) stays on the event loop.
        spec = self.models.loaded_spec(body.model or self.catalog.default_name())
        if spec is None:
            spec = await run_in_threadpool(self.catalog.resolve, body.model)
        stack = contextlib.AsyncExitStack()
        try:
            model = await stack.enter_async_context(self.models.use(spec))
            if prompt_chars <= INLINE_PROMPT_CHARS:
                tokens = prompt_of(model)
            else:
                tokens = await run_in_threadpool(prompt_of, model)
            limit = self._check_context(len(tokens), max_tokens, model.n_ctx, prompt_param)
            grammar = None
            if response_format is not None and response_format.type != "text":
                grammar = await run_in_threadpool(self._grammar, model, response_format)
            request = GenerationRequest(
                prompt_tokens=tokens,
                max_tokens=limit,
                stop=body.stop_list(),
                sampling=SamplingParams(
                    temperature=(
                        self.settings.default_temperature
                        if body.temperature is None
                        else body.temperature
                    ),
                    top_p=1.0 if body.top_p is None else body.top_p,
                    seed=body.seed,
                    grammar=grammar,
                ),
                priority=priority,
            )
            chunks = model.generate(request)
        except BaseException:
            await stack.aclose()
            raise
        return Run(spec.name, len(tokens), chunks, stack, metrics=self.metrics)

    def _check_context(self, n_prompt: int, max_tokens: int | None, n_ctx: int, param: str) -> int:
        """The completion budget; 400 with the token counts when it does not fit."""
        if n_prompt == 0:
            raise BadRequest("the prompt is empty", param=param)
        counts = {"prompt_tokens": n_prompt, "max_tokens": max_tokens, "context_length": n_ctx}
        if n_prompt >= n_ctx or (max_tokens is not None and n_prompt + max_tokens > n_ctx):
            asked = f" and max_tokens is {max_tokens}" if max_tokens is not None else ""
            raise BadRequest(
                f"this model's context is {n_ctx} tokens; the prompt has {n_prompt} tokens{asked}",
                param=param,
                code="context_length_exceeded",
                extra=counts,
            )
        room = n_ctx - n_prompt
        return min(max_tokens, room) if max_tokens else min(self.settings.default_max_tokens, room)

    @staticmethod
    def _grammar(model: LoadedModel, fmt: ResponseFormat | None) -> str | None:
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            schema: dict[str, Any] = {"type": "object"}
        else:
            if fmt.json_schema is None or not isinstance(fmt.json_schema.schema_, dict):
                raise BadRequest(
                    "response_format.json_schema.schema is required",
                    param="response_format.json_schema",
                )
            schema = fmt.json_schema.schema_
        try:
            return model.compile_json_schema(schema)
        except GrammarError as exc:
            raise BadRequest(
                str(exc), param="response_format.json_schema", code="invalid_json_schema"
            ) from None

    async def remember(
        self,
        principal: Principal,
        conversation_id: str | None,
        new: list[dict[str, Any]],
        reply: str,
    ) -> None:
        """Append this exchange to the conversation named in the request."""
        if not conversation_id:
            return
        messages = [*new, {"role": "assistant", "content": reply}]
        await run_in_threadpool(
            self.conversations.append, principal.user_id, conversation_id, messages
        )


def _role(role: str) -> str:
    return "system" if role == "developer" else role
