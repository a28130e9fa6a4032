"""Diarization benchmark: DER with no collar and overlapped speech scored.

Conversations of a male and a female espeak-ng voice with known turns (some overlapping) are
made in the run. Scored side by side:
  - service: `POST /v1/audio/transcriptions` with `diarize=true, response_format=rttm`
    (speaker count estimated), the whole request path;
  - service_k2: the same with `num_speakers=2`;
  - raw_engine: the Resemblyzer diarizer called directly (no service);
  - one_speaker: the trivial baseline, one label on all reference speech.

    .venv/bin/python benchmarks/diarization.py [--conversations 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

TOPICS = [
    "Shall we look at the budget for the next quarter before lunch?",
    "I have the numbers here and they look better than last time.",
    "What about the hiring plan for the new office in Berlin?",
    "We want two more engineers before the summer starts.",
    "The customer asked for a demo of the reporting feature.",
    "Then we should prepare the slides by Thursday evening.",
    "Do you think the server migration will be finished on time?",
    "Probably, the database is already copied and tested.",
    "Good, let us also check the travel plans for the conference.",
    "The flights are booked and the hotel is close to the venue.",
]


def make_conversations(n: int, seed: int = 7) -> list:
    from nemo_server.transcription.testing import FEMALE, MALE, Turn, conversation

    rng = random.Random(seed)
    out = []
    for i in range(n):
        turns = []
        for t in range(6):
            speaker, voice = ("A", MALE) if t % 2 == 0 else ("B", FEMALE)
            # Every third conversation has overlapping turns (negative gap).
            gap = rng.uniform(-0.8, -0.3) if i % 3 == 2 and t else rng.uniform(0.2, 0.8)
            turns.append(Turn(speaker, rng.choice(TOPICS), voice, gap))
        out.append(conversation(turns))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=6)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nemo-diar-bench-"))
    os.environ["NEMO_DATA_DIR"] = str(tmp)
    os.environ["NEMO_SECRETS_DIR"] = str(tmp / "no-secrets")
    os.environ["HF_HUB_OFFLINE"] = "1"

    from fastapi.testclient import TestClient

    from nemo_server.common.testing import ALICE, internal_headers
    from nemo_server.transcription.app import create_app
    from nemo_server.transcription.der import diarization_error, parse_rttm
    from nemo_server.transcription.engines.base import SpeakerBounds
    from nemo_server.transcription.engines.resemblyzer_diarizer import ResemblyzerDiarizer
    from nemo_server.transcription.settings import TranscriptionSettings
    from nemo_server.transcription.testing import wav_bytes

    talks = make_conversations(args.conversations)
    audio_s = sum(len(t.audio) / 16_000 for t in talks)
    systems: dict[str, list] = {
        "service": [],
        "service_k2": [],
        "raw_engine": [],
        "one_speaker": [],
    }
    timings = {"service": 0.0, "raw_engine": 0.0}
    engine = ResemblyzerDiarizer("cpu")
    engine.diarize(talks[0].audio[:32_000], SpeakerBounds())  # warm-up (torch first call)
    settings = TranscriptionSettings(device="cpu")

    def auth() -> dict[str, str]:
        # Internal tokens live a minute: mint one per request, a benchmark runs longer.
        return internal_headers(settings.common, ALICE)

    with TestClient(create_app(settings, diarizer=engine)) as client:
        for talk in talks:
            data = wav_bytes(talk.audio)
            for name, extra in (("service", {}), ("service_k2", {"num_speakers": "2"})):
                started = time.perf_counter()
                response = client.post(
                    "/v1/audio/transcriptions",
                    headers=auth(),
                    files={"file": ("talk.wav", data, "audio/wav")},
                    data={"diarize": "true", "response_format": "rttm", **extra},
                )
                if name == "service":
                    timings["service"] += time.perf_counter() - started
                response.raise_for_status()
                systems[name].append(diarization_error(talk.reference, parse_rttm(response.text)))
            started = time.perf_counter()
            turns = engine.diarize(talk.audio, SpeakerBounds())
            timings["raw_engine"] += time.perf_counter() - started
            spans = [(t.start, t.end, t.speaker) for t in turns]
            systems["raw_engine"].append(diarization_error(talk.reference, spans))
            single = [(a, b, "one") for a, b, _ in talk.reference]
            systems["one_speaker"].append(diarization_error(talk.reference, single))

        # Monologues: the estimated speaker count should be one.
        from nemo_server.transcription.testing import FEMALE, MALE, Turn, conversation

        monologues = [
            conversation([Turn("A", t, voice, 0.5) for t in TOPICS[:5]]) for voice in (MALE, FEMALE)
        ]
        single = 0
        for talk in monologues:
            response = client.post(
                "/v1/audio/transcriptions",
                headers=auth(),
                files={"file": ("mono.wav", wav_bytes(talk.audio), "audio/wav")},
                data={"diarize": "true", "response_format": "verbose_json"},
            )
            response.raise_for_status()
            single += response.json().get("speakers") == ["SPEAKER_00"]

    def pooled(scores: list) -> dict:
        total = sum(s.reference_s for s in scores)
        return {
            "der": round(sum(s.der * s.reference_s for s in scores) / total, 4),
            "missed": round(sum(s.missed for s in scores) / total, 4),
            "false_alarm": round(sum(s.false_alarm for s in scores) / total, 4),
            "confusion": round(sum(s.confusion for s in scores) / total, 4),
        }

    overlap_talks = [i for i in range(len(talks)) if i % 3 == 2]
    print(
        json.dumps(
            {
                "benchmark": "diarization",
                "collar_s": 0.0,
                "overlap_scored": True,
                "conversations": len(talks),
                "with_overlap": len(overlap_talks),
                "audio_s": round(audio_s, 2),
                **{name: pooled(scores) for name, scores in systems.items()},
                "service_overlap_only": pooled([systems["service"][i] for i in overlap_talks])
                if overlap_talks
                else None,
                "monologues_estimated_as_one_speaker": f"{single}/{len(monologues)}",
                "service_rtf_incl_asr": round(timings["service"] / audio_s, 4),
                "raw_engine_rtf": round(timings["raw_engine"] / audio_s, 4),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
