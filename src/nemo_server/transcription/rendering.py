"""Shaping a transcript into the response format a client asked for."""

from __future__ import annotations

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from nemo_server.common.errors import BadRequest
from nemo_server.transcription import formats
from nemo_server.transcription.engines.base import Segment, Turn
from nemo_server.transcription.labels import speakers_of
from nemo_server.transcription.schemas import (
    SegmentOut,
    TranscriptionJson,
    TranscriptionVerbose,
    WordOut,
)

_LANGUAGES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pt": "portuguese",
    "ja": "japanese",
    "zh": "chinese",
    "ru": "russian",
}


def render(
    fmt: str,
    segments: list[Segment],
    *,
    language: str | None,
    duration: float,
    model: str,
    transcript_id: str | None,
    turns: list[Turn] | None = None,
    words: bool = False,
    name: str = "audio",
    diarized: bool = False,
) -> Response:
    """The response for `response_format=fmt` (json, text, srt, vtt, verbose_json, rttm)."""
    if fmt == "text":
        return PlainTextResponse(formats.text_of(segments) + "\n")
    if fmt == "srt":
        return PlainTextResponse(formats.srt(segments), media_type="application/x-subrip")
    if fmt == "vtt":
        return PlainTextResponse(formats.vtt(segments), media_type="text/vtt")
    if fmt == "rttm":
        if not diarized:
            raise BadRequest("response_format 'rttm' needs diarize=true", param="response_format")
        body = formats.rttm(turns or formats.turns_from_segments(segments), name)
        return PlainTextResponse(body, media_type="text/x-rttm")
    text = formats.text_of(segments)
    if fmt == "json":
        return JSONResponse(TranscriptionJson(text=text, transcript_id=transcript_id).model_dump())
    speakers = speakers_of(segments)
    verbose = TranscriptionVerbose(
        language=_LANGUAGES.get(language or "", language or "unknown"),
        duration=round(duration, 3),
        text=text,
        segments=segment_models(segments),
        words=word_models(segments) if words else None,
        speakers=speakers or None,
        transcript_id=transcript_id,
        model=model,
    )
    return JSONResponse(verbose.model_dump(exclude_none=True))


def segment_models(segments: list[Segment]) -> list[SegmentOut]:
    return [SegmentOut(**item) for item in formats.segments_json(segments)]


def word_models(segments: list[Segment]) -> list[WordOut]:
    return [WordOut(**item) for item in formats.words_json(segments)]
