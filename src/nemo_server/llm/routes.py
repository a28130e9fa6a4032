"""HTTP routes of the LLM service (public paths; the gateway forwards them unchanged)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal, current_principal, require_admin
from nemo_server.common.errors import BadRequest, NemoError, NotFound
from nemo_server.llm import openai_format as fmt
from nemo_server.llm.engines.base import GenerationChunk, RequestPriority
from nemo_server.llm.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    Conversation,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    LlmStatus,
    LoadedModelInfo,
    ModelCard,
    ModelList,
)
from nemo_server.llm.service import LlmService, Run

log = logging.getLogger("nemo.llm.routes")
router = service_router()
PRIORITY_HEADER = "x-nemo-priority"


def get_service(request: Request) -> LlmService:
    return request.app.state.llm_service  # type: ignore[no-any-return]


def request_priority(
    request: Request, principal: Principal = Depends(current_principal)
) -> RequestPriority:
    """`X-Nemo-Priority: background|interactive`; calls by services default to background."""
    value = request.headers.get(PRIORITY_HEADER)
    if value is None:
        return (
            RequestPriority.BACKGROUND
            if "service" in principal.roles
            else RequestPriority.INTERACTIVE
        )
    try:
        return RequestPriority[value.strip().upper()]
    except KeyError:
        raise BadRequest(
            f"{PRIORITY_HEADER} must be 'interactive' or 'background'", param=PRIORITY_HEADER
        ) from None


# -- models ------------------------------------------------------------------------------------


def _cards(service: LlmService) -> list[ModelCard]:
    return [
        ModelCard(
            id=name,
            source=spec.source,
            loaded=service.models.is_loaded(name),
            description=spec.description,
        )
        for name, spec in service.catalog.specs().items()
    ]


@router.get("/v1/models", response_model=ModelList)
async def list_models(
    _: Principal = Depends(current_principal), service: LlmService = Depends(get_service)
) -> ModelList:
    """The models this service can serve (OpenAI's list shape, plus `loaded` and `source`)."""
    return ModelList(data=await run_in_threadpool(_cards, service))


@router.get("/v1/models/{model_id}", response_model=ModelCard)
async def get_model(
    model_id: str,
    _: Principal = Depends(current_principal),
    service: LlmService = Depends(get_service),
) -> ModelCard:
    """One model; 404 when unknown."""
    for card in await run_in_threadpool(_cards, service):
        if card.id == model_id:
            return card
    raise NotFound(f"model '{model_id}' does not exist", param="model", code="model_not_found")


# -- generation --------------------------------------------------------------------------------


def _sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _collect(run: Run, request: Request) -> str:
    """The whole answer; a client that hangs up meanwhile ends the generation (frees its slot)."""
    task = asyncio.ensure_future(run.collect())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            if not task.done() and await request.is_disconnected():
                task.cancel()
                raise ClientGone("the client disconnected")
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class ClientGone(NemoError):
    """Nobody reads the answer any more (status 499, as nginx logs it)."""

    status_code, type, code = 499, "invalid_request_error", "client_closed_request"


async def _events(
    run: Run,
    first: list[dict[str, Any]],
    piece: Callable[[GenerationChunk], dict[str, Any]],
    tail: Callable[[], list[dict[str, Any]]],
    on_done: Callable[[], Any] | None,
) -> AsyncIterator[bytes]:
    """SSE bytes for a run; closing this generator (client gone) frees the request's slot."""
    try:
        for payload in first:
            yield fmt.sse(payload)
        async for chunk in run.stream():
            yield fmt.sse(piece(chunk))
        for payload in tail():
            yield fmt.sse(payload)
        if on_done is not None:
            await on_done()
    except Exception as exc:  # headers are sent: report in-band, then end the stream
        log.exception("stream failed")
        yield fmt.sse(fmt.stream_error(str(exc)))
    finally:
        await run.aclose()
    yield fmt.DONE


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    principal: Principal = Depends(current_principal),
    priority: RequestPriority = Depends(request_priority),
    service: LlmService = Depends(get_service),
) -> Response | dict[str, Any]:
    """OpenAI chat completions, streamed (SSE ending `data: [DONE]`) or whole."""
    run, new = await service.start_chat(principal, body, priority)
    id_ = fmt.new_id("chatcmpl")

    async def remember() -> None:
        await service.remember(principal, body.conversation_id, new, run.text)

    if not body.stream:
        text = await _collect(run, request)
        await remember()
        return fmt.chat_completion(
            id_,
            run.model,
            text,
            run.finish_reason,
            run.prompt_tokens,
            run.completion_tokens,
            body.conversation_id,
        )
    created = int(time.time())
    first = [fmt.chat_chunk(id_, created, run.model, {"role": "assistant", "content": ""})]

    def piece(chunk: GenerationChunk) -> dict[str, Any]:
        delta = {"content": chunk.text} if chunk.text else {}
        return fmt.chat_chunk(id_, created, run.model, delta, chunk.finish_reason)

    tail = _usage_tail(body, id_, created, run, "chat.completion.chunk")
    return _sse_response(_events(run, first, piece, tail, remember))


def _usage_tail(
    body: Any, id_: str, created: int, run: Run, obj: str
) -> Callable[[], list[dict[str, Any]]]:
    """The chunks after the last token: usage when `stream_options.include_usage` asks."""

    def tail() -> list[dict[str, Any]]:
        if not (body.stream_options and body.stream_options.include_usage):
            return []
        return [
            fmt.usage_chunk(id_, created, run.model, obj, run.prompt_tokens, run.completion_tokens)
        ]

    return tail


@router.post("/v1/completions", response_model=None)
async def completions(
    body: CompletionRequest,
    request: Request,
    _: Principal = Depends(current_principal),
    priority: RequestPriority = Depends(request_priority),
    service: LlmService = Depends(get_service),
) -> Response | dict[str, Any]:
    """OpenAI (legacy) text completions, streamed or whole."""
    run, prompt = await service.start_completion(body, priority)
    id_ = fmt.new_id("cmpl")
    prefix = prompt if body.echo else ""
    if not body.stream:
        text = await _collect(run, request)
        return fmt.text_completion(
            id_,
            run.model,
            prefix + text,
            run.finish_reason,
            run.prompt_tokens,
            run.completion_tokens,
        )
    created = int(time.time())
    first = [fmt.text_chunk(id_, created, run.model, prefix)] if prefix else []

    def piece(chunk: GenerationChunk) -> dict[str, Any]:
        return fmt.text_chunk(id_, created, run.model, chunk.text, chunk.finish_reason)

    tail = _usage_tail(body, id_, created, run, "text_completion")
    return _sse_response(_events(run, first, piece, tail, None))


# -- conversations -----------------------------------------------------------------------------


@router.post("/v1/conversations", response_model=Conversation, status_code=201)
async def create_conversation(
    body: ConversationCreate,
    principal: Principal = Depends(current_principal),
    service: LlmService = Depends(get_service),
) -> Conversation:
    """Start a conversation (optionally with a system prompt) for the current user."""
    return await run_in_threadpool(
        service.conversations.create, principal.user_id, body.title, body.model, body.system_prompt
    )


@router.get("/v1/conversations", response_model=ConversationList)
async def list_conversations(
    limit: int = Query(default=100, ge=1, le=1000),
    principal: Principal = Depends(current_principal),
    service: LlmService = Depends(get_service),
) -> ConversationList:
    """The current user's conversations, most recently updated first."""
    data = await run_in_threadpool(service.conversations.list, principal.user_id, limit)
    return ConversationList(data=data)


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(
    conversation_id: str,
    principal: Principal = Depends(current_principal),
    service: LlmService = Depends(get_service),
) -> ConversationDetail:
    """One conversation with its messages; 404 for another user's."""
    return await run_in_threadpool(service.conversations.get, principal.user_id, conversation_id)


@router.delete("/v1/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: str,
    principal: Principal = Depends(current_principal),
    service: LlmService = Depends(get_service),
) -> Response:
    """Delete a conversation and its messages."""
    await run_in_threadpool(service.conversations.delete, principal.user_id, conversation_id)
    return Response(status_code=204)


# -- admin -------------------------------------------------------------------------------------


@router.get("/v1/llm/status", response_model=LlmStatus)
async def status(
    _: Principal = Depends(require_admin), service: LlmService = Depends(get_service)
) -> LlmStatus:
    """Loaded models, their slots and queues (admin)."""
    return LlmStatus(
        default_model=service.settings.default_model,
        keep_alive_s=service.settings.keep_alive_s,
        loaded=[LoadedModelInfo(**info) for info in service.models.loaded()],
    )


@router.post("/v1/llm/models/{model_id}/load", response_model=LoadedModelInfo)
async def load_model(
    model_id: str,
    _: Principal = Depends(require_admin),
    service: LlmService = Depends(get_service),
) -> LoadedModelInfo:
    """Load a model now instead of on first use (admin)."""
    spec = await run_in_threadpool(service.catalog.resolve, model_id)
    await service.models.load(spec)
    info = next(i for i in service.models.loaded() if i["id"] == spec.name)
    return LoadedModelInfo(**info)


@router.post("/v1/llm/models/{model_id}/unload")
async def unload_model(
    model_id: str,
    force: bool = Query(default=False, description="End running requests instead of a 409."),
    _: Principal = Depends(require_admin),
    service: LlmService = Depends(get_service),
) -> dict[str, Any]:
    """Unload a model and release its GPU lease (admin); 409 while it serves unless `force`."""
    service.catalog.lookup(model_id)
    unloaded = await service.models.unload(model_id, force=force)
    return {"id": model_id, "unloaded": unloaded}
