"""HTTP and WebSocket routes: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from nemo_server.common.app import service_router
from nemo_server.common.auth import Principal, current_principal
from nemo_server.common.errors import Conflict, NotFound
from nemo_server.transcription.jobs import JobRunner
from nemo_server.transcription.labels import speakers_of
from nemo_server.transcription.models import Job, Transcript
from nemo_server.transcription.rendering import render, segment_models, word_models
from nemo_server.transcription.schemas import (
    JobList,
    JobOut,
    ModelList,
    ModelOut,
    ResponseFormat,
    TranscriptList,
    TranscriptOut,
    TranscriptSummary,
)
from nemo_server.transcription.service import OPENAI_ALIASES, TranscriptionService
from nemo_server.transcription.service import Request as AsrRequest
from nemo_server.transcription.store import TranscriptStore

router = service_router(tags=["transcription"])
StoredFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "rttm"]


def _service(request: Request) -> TranscriptionService:
    return request.app.state.transcription


def _jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


def _store(request: Request) -> TranscriptStore:
    return request.app.state.transcription.store


@router.post("/v1/audio/transcriptions", response_model=None)
async def create_transcription(
    file: UploadFile = File(..., description="Audio: wav, flac, mp3, m4a, ogg, webm..."),
    model: str = Form("whisper-1"),
    language: str | None = Form(None),
    prompt: str | None = Form(None),
    response_format: ResponseFormat = Form("json"),
    temperature: float | None = Form(None, ge=0, le=1),
    timestamp_granularities: list[Literal["word", "segment"]] | None = Form(
        None, alias="timestamp_granularities[]"
    ),
    diarize: bool = Form(False),
    num_speakers: int | None = Form(None),
    min_speakers: int | None = Form(None),
    max_speakers: int | None = Form(None),
    principal: Principal = Depends(current_principal),
    service: TranscriptionService = Depends(_service),
) -> Response:
    """Transcribe one file (OpenAI-compatible), optionally with speakers (`diarize=true`)."""
    service.models.resolve(model)  # 404 before reading a large upload for nothing
    data = await file.read()
    audio = await service.decode(data, file.filename)
    words = "word" in (timestamp_granularities or [])
    req = AsrRequest(
        model, language, prompt, words, diarize, num_speakers, min_speakers, max_speakers
    )
    out = await service.transcribe(principal, audio, req, file.filename)
    return render(
        response_format,
        out.segments,
        language=out.language,
        duration=out.duration,
        model=out.model,
        transcript_id=out.transcript_id,
        turns=out.turns,
        words=words,
        name=(file.filename or "audio").rsplit(".", 1)[0],
        diarized=diarize,
    )


@router.get("/v1/audio/models", response_model=ModelList)
async def list_models(service: TranscriptionService = Depends(_service)) -> ModelList:
    """The ASR models a request may name (`whisper-1` is the default's alias)."""
    default = service.settings.default_model
    return ModelList(
        data=[
            ModelOut(id=name, aliases=list(OPENAI_ALIASES) if name == default else [])
            for name in sorted(service.models.available)
        ]
    )


@router.post("/v1/transcriptions/jobs", response_model=JobOut, status_code=202)
async def create_job(
    file: UploadFile = File(...),
    model: str = Form("whisper-1"),
    language: str | None = Form(None),
    prompt: str | None = Form(None),
    diarize: bool = Form(False),
    num_speakers: int | None = Form(None),
    min_speakers: int | None = Form(None),
    max_speakers: int | None = Form(None),
    principal: Principal = Depends(current_principal),
    service: TranscriptionService = Depends(_service),
    jobs: JobRunner = Depends(_jobs),
) -> JobOut:
    """Queue a durable job for long audio; poll it, then fetch `/result`."""
    service.models.resolve(model)
    audio = await service.decode(await file.read(), file.filename)
    req = AsrRequest(
        model, language, prompt, True, diarize, num_speakers, min_speakers, max_speakers
    )
    job = await jobs.submit(principal, audio, req, file.filename)
    return await run_in_threadpool(_job_out, _store_of(service), job)


@router.get("/v1/transcriptions/jobs", response_model=JobList)
def list_jobs(
    status: str | None = Query(None),
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0),
    principal: Principal = Depends(current_principal),
    store: TranscriptStore = Depends(_store),
) -> JobList:
    """The caller's jobs, newest first."""
    rows = store.list_jobs(principal.user_id, status, limit, offset)
    return JobList(data=[_job_out(store, j) for j in rows])


@router.get("/v1/transcriptions/jobs/{job_id}", response_model=JobOut)
def get_job(
    job_id: str,
    principal: Principal = Depends(current_principal),
    store: TranscriptStore = Depends(_store),
) -> JobOut:
    """A job's status and progress."""
    return _job_out(store, _owned_job(store, principal, job_id))


@router.get("/v1/transcriptions/jobs/{job_id}/result", response_model=None)
def get_job_result(
    job_id: str,
    response_format: StoredFormat = Query("verbose_json"),
    principal: Principal = Depends(current_principal),
    store: TranscriptStore = Depends(_store),
) -> Response:
    """The finished job's transcript (409 while it is not completed)."""
    job = _owned_job(store, principal, job_id)
    if job.status != "completed":
        raise Conflict(f"job {job_id!r} is {job.status}, not completed", param="job_id")
    return _render_stored(store, principal, job.transcript_id, response_format)


@router.post("/v1/transcriptions/jobs/{job_id}/cancel", response_model=JobOut)
async def cancel_job(
    job_id: str,
    principal: Principal = Depends(current_principal),
    jobs: JobRunner = Depends(_jobs),
) -> JobOut:
    """Cancel a queued or running job (segments saved so far stay in its transcript)."""
    job = await jobs.cancel(principal, job_id)
    return await run_in_threadpool(_job_out, jobs.store, job)


@router.get("/v1/transcriptions", response_model=TranscriptList)
def list_transcripts(
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0),
    principal: Principal = Depends(current_principal),
    store: TranscriptStore = Depends(_store),
) -> TranscriptList:
    """The caller's stored transcripts, newest first."""
    rows = store.list_transcripts(principal.user_id, limit, offset)
    return TranscriptList(data=[_summary(t) for t in rows])


@router.get("/v1/transcriptions/{transcript_id}", response_model=None)
def get_transcript(
    transcript_id: str,
    response_format: StoredFormat | None = Query(None),
    principal: Principal = Depends(current_principal),
    store: TranscriptStore = Depends(_store),
) -> Response | TranscriptOut:
    """A stored transcript with speakers and times (or rendered as `response_format`)."""
    if response_format is not None:
        return _render_stored(store, principal, transcript_id, response_format)
    record = store.get_transcript(principal.user_id, transcript_id)
    if record is None:
        raise NotFound(f"no transcript {transcript_id!r}", param="transcript_id")
    from nemo_server.transcription.formats import text_of

    return TranscriptOut(
        **_summary(record.transcript).model_dump(),
        text=text_of(record.segments),
        speakers=speakers_of(record.segments),
        segments=segment_models(record.segments),
        words=word_models(record.segments),
    )


@router.delete("/v1/transcriptions/{transcript_id}", status_code=204)
def delete_transcript(
    transcript_id: str,
    principal: Principal = Depends(current_principal),
    store: TranscriptStore = Depends(_store),
) -> Response:
    """Delete a stored transcript (and its job)."""
    if not store.delete_transcript(principal.user_id, transcript_id):
        raise NotFound(f"no transcript {transcript_id!r}", param="transcript_id")
    return Response(status_code=204)


def _store_of(service: TranscriptionService) -> TranscriptStore:
    return service.store


def _owned_job(store: TranscriptStore, principal: Principal, job_id: str) -> Job:
    job = store.get_job(job_id, principal.user_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}", param="job_id")
    return job


def _render_stored(
    store: TranscriptStore, principal: Principal, transcript_id: str, fmt: str
) -> Response:
    record = store.get_transcript(principal.user_id, transcript_id)
    if record is None:
        raise NotFound(f"no transcript {transcript_id!r}", param="transcript_id")
    t = record.transcript
    return render(
        fmt,
        record.segments,
        language=t.language,
        duration=t.duration_s,
        model=t.model,
        transcript_id=t.id,
        words=True,
        name=(t.filename or t.id).rsplit(".", 1)[0],
        diarized=t.diarized,
    )


def _summary(t: Transcript) -> TranscriptSummary:
    return TranscriptSummary(
        id=t.id,
        created_at=t.created_at,
        source=t.source,
        filename=t.filename,
        model=t.model,
        language=t.language,
        duration=round(t.duration_s, 3),
        diarized=t.diarized,
        complete=t.complete,
    )


def _job_out(store: TranscriptStore, job: Job) -> JobOut:
    done = job.status == "completed"
    progress = (
        1.0 if done else min(0.99, job.processed_s / job.duration_s) if job.duration_s else 0.0
    )
    return JobOut(
        id=job.id,
        status=job.status,
        progress=round(progress, 4),
        duration=round(job.duration_s, 3),
        processed=round(job.processed_s, 3),
        segments=store.segment_count(job.transcript_id),
        preemptions=job.preemptions,
        transcript_id=job.transcript_id,
        model=job.options.get("model") or "",
        diarize=bool(job.options.get("diarize")),
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
