"""Emotion of speech: transcript segments aligned with prosody, summarised per speaker."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from nemo_server.common.errors import BadRequest
from nemo_server.emotion import prosody as pros
from nemo_server.emotion.engines.base import LABELS


def transcript_segments(transcript: Any, duration: float) -> list[dict[str, Any]]:
    """Clean `(start, end, text, speaker)` segments of a verbose_json transcript, in time order."""
    raw = transcript.get("segments") if isinstance(transcript, dict) else None
    if not isinstance(raw, list):
        raise BadRequest("the transcription service answered without segments", param="file")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        try:
            start = max(0.0, float(item.get("start", 0.0)))
            end = min(float(item.get("end", start)), duration)
        except (TypeError, ValueError):
            continue
        if end <= start:
            continue
        speaker = item.get("speaker") or item.get("speaker_id") or item.get("speaker_label")
        out.append(
            {
                "start": round(start, 3),
                "end": round(end, 3),
                "text": str(item.get("text") or "").strip(),
                "speaker": str(speaker)[:64] if speaker is not None else None,
            }
        )
    return sorted(out, key=lambda s: (s["start"], s["end"]))


def segment_prosody(frames: pros.FrameTrack, segments: list[dict[str, Any]]) -> list[dict]:
    """Prosody of each segment; pitch level is judged against its own speaker's median."""
    spans: dict[str | None, list[tuple[float, float]]] = {}
    for s in segments:
        spans.setdefault(s["speaker"], []).append((s["start"], s["end"]))
    medians = {speaker: pros.median_pitch(frames, ss) for speaker, ss in spans.items()}
    return [
        asdict(pros.segment_prosody(frames, s["start"], s["end"], s["text"], medians[s["speaker"]]))
        for s in segments
    ]


def speaker_summaries(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per speaker (in order of first appearance): time, dominant emotion, mean arousal/valence.

    Means are weighted by segment duration so a long turn counts more than an interjection.
    """
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for s in segments:
        groups.setdefault(s["speaker"], []).append(s)
    out = []
    for speaker, items in groups.items():
        weights = np.array([max(s["end"] - s["start"], 1e-3) for s in items])
        scores = np.array([[s["text_emotion"]["scores"][k] for k in LABELS] for s in items])
        mean_scores = (scores * weights[:, None]).sum(0) / weights.sum()
        out.append(
            {
                "speaker": speaker,
                "seconds": round(float(weights.sum()), 2),
                "segments": len(items),
                "dominant_emotion": LABELS[int(np.argmax(mean_scores))],
                "mean_arousal": round(
                    float(np.average([s["arousal"] for s in items], weights=weights)), 3
                ),
                "mean_valence": round(
                    float(np.average([s["valence"] for s in items], weights=weights)), 3
                ),
            }
        )
    return out
