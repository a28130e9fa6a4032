"""Putting diarization's speaker turns onto recognised words and segments.

Each word takes the speaker whose turns overlap it most (the nearest turn when none does, so
words in a pause stay labelled). A segment whose words change speaker is split at the change,
so every segment has one speaker; where two people talk at once each word still gets the
dominant voice, and the RTTM output keeps both overlapping turns.
"""

from __future__ import annotations

from nemo_server.transcription.engines.base import Segment, Turn, Word


def speaker_at(start: float, end: float, turns: list[Turn]) -> str | None:
    """The speaker talking most within [start, end] (the nearest turn if nobody is)."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap.items(), key=lambda kv: kv[1])[0]
    middle = (start + end) / 2
    nearest = min(turns, key=lambda t: min(abs(t.start - middle), abs(t.end - middle)))
    return nearest.speaker


def assign_speakers(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Segments with `speaker` set on them and on their words, split at speaker changes."""
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            segment.speaker = speaker_at(segment.start, segment.end, turns)
            out.append(segment)
            continue
        for word in segment.words:
            word.speaker = speaker_at(word.start, word.end, turns)
        out.extend(_split(segment))
    return out


def _split(segment: Segment) -> list[Segment]:
    groups: list[list[Word]] = []
    for word in segment.words:
        if groups and groups[-1][-1].speaker == word.speaker:
            groups[-1].append(word)
        else:
            groups.append([word])
    if len(groups) == 1:
        segment.speaker = groups[0][0].speaker
        return [segment]
    return [
        Segment(
            start=group[0].start if i else segment.start,
            end=group[-1].end if i < len(groups) - 1 else segment.end,
            text=" ".join(w.word for w in group),
            words=group,
            speaker=group[0].speaker,
            avg_logprob=segment.avg_logprob,
            no_speech_prob=segment.no_speech_prob,
        )
        for i, group in enumerate(groups)
    ]


def speakers_of(segments: list[Segment]) -> list[str]:
    """Distinct speaker labels in order of first appearance."""
    return list(dict.fromkeys(s.speaker for s in segments if s.speaker))
