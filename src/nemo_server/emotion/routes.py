"""HTTP routes of the emotion service (public paths under `/v1/emotion`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, File, Form, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal, current_principal
from nemo_server.common.errors import ServiceUnavailable
from nemo_server.emotion.schemas import (
    AudioResponse,
    ModelInfo,
    StoredResult,
    StoredResultList,
    TextRequest,
    TextResponse,
)
from nemo_server.emotion.service import EmotionService
from nemo_server.emotion.store import EmotionStore

router = service_router(prefix="/v1/emotion", tags=["emotion"])


def get_service(request: Request) -> EmotionService:
    service = getattr(request.app.state, "emotion", None)
    if service is None:
        raise ServiceUnavailable("the emotion model is not loaded yet")
    return service


def get_store(service: EmotionService = Depends(get_service)) -> EmotionStore:
    if service.store is None:
        raise ServiceUnavailable("result storage is not configured")
    return service.store


@router.post("/text", response_model=TextResponse)
async def text_emotion(
    body: TextRequest,
    principal: Principal = Depends(current_principal),
    service: EmotionService = Depends(get_service),
) -> TextResponse:
    """Emotion (7 Ekman labels with scores) and sentiment of one text or a batch of texts."""
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    results = await service.texts(
        principal, texts, store=body.store, source_id=body.source_id, ids=body.ids
    )
    return TextResponse.model_validate(
        {"model": service.text_engine.name, "results": [r.as_dict() for r in results]}
    )


@router.post("/audio", response_model=AudioResponse)
async def audio_emotion(
    file: Annotated[UploadFile, File(description="Speech recording (WAV, MP3, OGG, ...).")],
    language: Annotated[str | None, Form(max_length=16)] = None,
    store: Annotated[bool | None, Form()] = None,
    source_id: Annotated[str | None, Form(max_length=200)] = None,
    principal: Principal = Depends(current_principal),
    service: EmotionService = Depends(get_service),
) -> AudioResponse:
    """Per transcript segment and speaker: prosody (pitch, energy, rate -> arousal, valence)
    and the emotion of what was said, aligned in time."""
    data = await file.read()
    result = await service.audio(
        principal,
        data,
        filename=file.filename or "audio",
        content_type=file.content_type or "application/octet-stream",
        language=language,
        store=store,
        source_id=source_id,
    )
    return AudioResponse.model_validate(result)


def _stored(row) -> StoredResult:
    return StoredResult.model_validate(
        {
            **{k: getattr(row, k) for k in StoredResult.model_fields if hasattr(row, k)},
            "sentiment": {"label": row.sentiment_label, "score": row.sentiment_score},
        }
    )


@router.get("/results", response_model=StoredResultList)
async def list_results(
    kind: Literal["text", "segment"] | None = None,
    source_id: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    principal: Principal = Depends(current_principal),
    store: EmotionStore = Depends(get_store),
) -> StoredResultList:
    """The caller's stored results, oldest first (for the insights service and exports)."""
    rows, has_more = await run_in_threadpool(
        lambda: store.list(
            principal.user_id,
            kind=kind,
            source_id=source_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    )
    return StoredResultList(data=[_stored(r) for r in rows], has_more=has_more)


@router.delete("/results")
async def delete_results(
    source_id: Annotated[str | None, Query(max_length=200)] = None,
    principal: Principal = Depends(current_principal),
    store: EmotionStore = Depends(get_store),
) -> dict[str, int]:
    """Forget the caller's stored results (of one source when `source_id` is given)."""
    deleted = await run_in_threadpool(lambda: store.delete(principal.user_id, source_id=source_id))
    return {"deleted": deleted}


@router.get("/model", response_model=ModelInfo)
async def model_info(
    _: Principal = Depends(current_principal),
    service: EmotionService = Depends(get_service),
) -> ModelInfo:
    """Which engines answer, their labels, and the model card of the trained model."""
    return ModelInfo(
        text_engine=service.settings.text_engine,
        model=service.text_engine.name,
        labels=list(service.labels),
        sentiment_engine=service.sentiment_name,
        card=service.text_engine.info(),
    )
