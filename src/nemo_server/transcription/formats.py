"""Transcript output formats: text, SRT, WebVTT, RTTM, and OpenAI's JSON shapes."""

from __future__ import annotations

from typing import Any

from nemo_server.transcription.engines.base import Segment, Turn


def text_of(segments: list[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())


def _clock(seconds: float, sep: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def _caption(segment: Segment) -> str:
    text = segment.text.strip()
    return f"[{segment.speaker}] {text}" if segment.speaker else text


def srt(segments: list[Segment]) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{_caption(s)}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(blocks)


def vtt(segments: list[Segment]) -> str:
    blocks = []
    for s in segments:
        # WebVTT's voice span carries the speaker natively.
        text = f"<v {s.speaker}>{s.text.strip()}" if s.speaker else s.text.strip()
        blocks.append(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{text}\n")
    return "WEBVTT\n\n" + "\n".join(blocks)


def rttm(turns: list[Turn], file_id: str = "audio") -> str:
    """NIST RTTM speaker turns (one SPEAKER line per turn; overlapping turns stay)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in file_id) or "audio"
    return "".join(
        f"SPEAKER {safe} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
        for t in turns
    )


def turns_from_segments(segments: list[Segment]) -> list[Turn]:
    """Speaker turns from labelled segments (used when no diarization turns were kept)."""
    return [Turn(s.start, s.end, s.speaker) for s in segments if s.speaker]


def words_json(segments: list[Segment]) -> list[dict[str, Any]]:
    out = []
    for s in segments:
        for w in s.words:
            item: dict[str, Any] = {
                "word": w.word,
                "start": round(w.start, 3),
                "end": round(w.end, 3),
            }
            if w.speaker:
                item["speaker"] = w.speaker
            out.append(item)
    return out


def segments_json(segments: list[Segment]) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(segments):
        item: dict[str, Any] = {
            "id": i,
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "text": s.text,
            "avg_logprob": round(s.avg_logprob, 4),
            "no_speech_prob": round(s.no_speech_prob, 4),
        }
        if s.speaker:
            item["speaker"] = s.speaker
        out.append(item)
    return out
