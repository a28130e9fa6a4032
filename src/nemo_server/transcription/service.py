"""The transcription use case: decode, recognise, diarize, label, store. No FastAPI here."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nemo_server.common.auth import Principal
from nemo_server.common.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from nemo_server.common.gpu import LeaseClient, Priority
from nemo_server.transcription.audio import DecodeLimits, DecoderPool, decode_bytes
from nemo_server.transcription.engines import model_paths
from nemo_server.transcription.engines.base import (
    SAMPLE_RATE,
    AsrEngine,
    AsrOptions,
    DiarizationEngine,
    Segment,
    SpeakerBounds,
    Turn,
)
from nemo_server.transcription.labels import assign_speakers
from nemo_server.transcription.settings import TranscriptionSettings
from nemo_server.transcription.store import TranscriptStore

log = logging.getLogger("nemo.transcription")

OPENAI_ALIASES = ("whisper-1",)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class ModelRegistry:
    """The ASR models requests may name, loaded on first use and kept."""

    def __init__(
        self,
        settings: TranscriptionSettings,
        builder: Callable[[str], AsrEngine] | None = None,
        preset: dict[str, AsrEngine] | None = None,
    ) -> None:
        self.settings = settings
        self.available = set(model_paths(settings)) | set(preset or {})
        self._loaded: dict[str, AsrEngine] = dict(preset or {})
        self._builder = builder
        self._lock = threading.Lock()

    def resolve(self, name: str | None) -> str:
        """The model a request means; `whisper-1` and no name mean the default. 404 if unknown."""
        if not name or name in OPENAI_ALIASES:
            return self.settings.default_model
        if name not in self.available:
            raise NotFound(
                f"model {name!r} does not exist; available: "
                f"{', '.join(sorted(self.available | set(OPENAI_ALIASES)))}",
                param="model",
                code="model_not_found",
            )
        return name

    def get(self, name: str) -> AsrEngine:
        """The loaded engine (loading it now if needed; callers run this off the event loop)."""
        with self._lock:
            engine = self._loaded.get(name)
            if engine is not None:
                return engine
            if self._builder is None:
                raise ServiceUnavailable(f"model {name!r} cannot be loaded here", param="model")
            try:
                engine = self._builder(name)
            except Exception as exc:  # a broken model dir is the operator's problem, not a 500
                log.exception("loading model %s failed", name)
                raise ServiceUnavailable(f"model {name!r} failed to load: {exc}") from None
            self._loaded[name] = engine
            return engine


class Diarizers:
    """The diarization engine, built on first use (torch and the encoder take seconds)."""

    def __init__(self, factory: Callable[[], DiarizationEngine]) -> None:
        self._factory = factory
        self._engine: DiarizationEngine | None = None
        self._lock = threading.Lock()

    def get(self) -> DiarizationEngine:
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = self._factory()
                except Exception as exc:
                    log.exception("loading the diarizer failed")
                    raise ServiceUnavailable(f"diarization is unavailable: {exc}") from None
            return self._engine


@dataclass
class Request:
    """What one transcription asks for (already validated by the schema layer)."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    word_timestamps: bool = True
    diarize: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None


@dataclass
class Output:
    segments: list[Segment]
    language: str
    duration: float
    model: str
    turns: list[Turn] = field(default_factory=list)
    transcript_id: str | None = None


class TranscriptionService:
    """Transcribes audio for a user and keeps the transcript."""

    def __init__(
        self,
        settings: TranscriptionSettings,
        models: ModelRegistry,
        diarizers: Diarizers,
        store: TranscriptStore,
        leases: LeaseClient,
    ) -> None:
        self.settings = settings
        self.models = models
        self.diarizers = diarizers
        self.store = store
        self.leases = leases
        limits = DecodeLimits(
            settings.decode_timeout_s, settings.decode_memory_mb, settings.max_audio_s
        )
        self.decoder = DecoderPool(limits)

    async def decode(self, data: bytes, filename: str | None) -> np.ndarray:
        suffix = "." + filename.rsplit(".", 1)[-1] if filename and "." in filename else ""
        return await decode_bytes(data, self.decoder, suffix)

    def bounds(self, req: Request) -> SpeakerBounds:
        """Speaker-count bounds of a request, checked against each other and the limit."""
        limit = self.settings.max_speakers_limit
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(req, name)
            if value is not None and not 1 <= value <= limit:
                raise Unprocessable(f"{name} must be between 1 and {limit}", param=name)
        if req.num_speakers is not None and (req.min_speakers or req.max_speakers):
            raise BadRequest(
                "give num_speakers, or min_speakers/max_speakers, not both", param="num_speakers"
            )
        low, high = req.min_speakers or 1, req.max_speakers or limit
        if low > high:
            raise BadRequest("min_speakers is larger than max_speakers", param="min_speakers")
        return SpeakerBounds(num=req.num_speakers, min=low, max=high)

    def options(self, engine: AsrEngine, req: Request, beam_size: int | None = None) -> AsrOptions:
        language = (req.language or "").strip().lower() or None
        if language is not None:
            if not _LANGUAGE.match(language):
                raise Unprocessable(
                    "language must be an ISO-639-1 code such as 'en'", param="language"
                )
            if not engine.multilingual and language != "en":
                raise Unprocessable(
                    f"model {engine.name!r} is English-only; language {language!r} is not supported",
                    param="language",
                )
        return AsrOptions(
            language=language,
            prompt=(req.prompt or None),
            word_timestamps=req.word_timestamps or req.diarize,
            vad_filter=self.settings.vad_filter,
            beam_size=beam_size or self.settings.beam_size,
        )

    async def engine(self, name: str) -> AsrEngine:
        return await asyncio.to_thread(self.models.get, name)

    async def transcribe(
        self, principal: Principal, audio: np.ndarray, req: Request, filename: str | None
    ) -> Output:
        """Recognise (and diarize) audio under an interactive GPU lease; store the transcript."""
        model = self.models.resolve(req.model)
        duration = len(audio) / SAMPLE_RATE
        if duration > self.settings.max_sync_audio_s:
            raise PayloadTooLarge(
                f"audio of {duration:.0f} s is longer than {self.settings.max_sync_audio_s:.0f} s; "
                "submit it as a job (POST /v1/transcriptions/jobs)",
                param="file",
            )
        bounds = self.bounds(req) if req.diarize else None
        engine = await self.engine(model)
        options = self.options(engine, req)
        async with self.leases.lease(
            f"transcription:{model}",
            priority=Priority.INTERACTIVE,
            vram_mb=self.settings.gpu_vram_mb,
            wait_timeout_s=60,
        ):
            result = await asyncio.to_thread(engine.transcribe, audio, options)
        output = Output(result.segments, result.language, duration, model)
        if bounds is not None:
            output.turns = await asyncio.to_thread(self.diarizers.get().diarize, audio, bounds)
            output.segments = assign_speakers(output.segments, output.turns)
        record = await asyncio.to_thread(
            self.store.save_transcript,
            principal.user_id,
            output.segments,
            source="file",
            filename=(filename or None) and filename[:255],
            model=model,
            language=output.language,
            duration_s=duration,
            diarized=bounds is not None,
            complete=True,
        )
        output.transcript_id = record.id
        return output
