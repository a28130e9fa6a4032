"""ASR benchmark: WER (normalised) and real-time factor, the service versus raw faster-whisper.

Both run the bundled Whisper tiny.en (int8, CPU, beam 5, Silero VAD) on the same espeak-ng
sentences in one run. The service path is the whole request: multipart upload, decoding in a
subprocess, recognition, storing the transcript. A live-stream pass then feeds a conversation
at real-time pace through `WS /v1/audio/stream` and reports the delay from the end of speech
to its final segment.

    .venv/bin/python benchmarks/asr.py [--sentences 24] [--threads 2] [--no-stream]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SENTENCES = [
    "Please send the budget report to the finance team before Friday afternoon.",
    "The meeting with the design group has been moved to Tuesday morning.",
    "We should review the customer feedback before we plan the next release.",
    "Our new office opens in the spring and has room for forty people.",
    "The server crashed twice last night because the disk was full.",
    "Could you book a table for six people at the Italian restaurant?",
    "The train to the airport leaves every twenty minutes from platform two.",
    "She explained the results of the experiment in a short presentation.",
    "Remember to water the plants and feed the cat while I am away.",
    "The quarterly numbers look better than we expected in January.",
    "He fixed the bug in the login page and deployed the update.",
    "Children learn languages faster when they hear them every day.",
    "The museum is closed on Mondays but open late on Thursdays.",
    "Weather forecasts say it will rain heavily over the weekend.",
    "Our team finished the project two weeks ahead of schedule.",
    "Please turn off the lights and lock the door when you leave.",
    "The library has thousands of old maps and rare books.",
    "We need more volunteers for the charity run next month.",
    "The doctor recommended a walk after dinner every evening.",
    "A good night's sleep helps you concentrate at work.",
    "The price of coffee went up again this year.",
    "Let us discuss the hiring plan for the new engineering team.",
    "The package should arrive by courier tomorrow before noon.",
    "Her garden is full of roses, tulips and sunflowers in summer.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="nemo-asr-bench-"))
    os.environ["NEMO_DATA_DIR"] = str(tmp)
    os.environ["NEMO_SECRETS_DIR"] = str(tmp / "no-secrets")

    from fastapi.testclient import TestClient
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    from nemo_server.common.testing import ALICE, internal_headers
    from nemo_server.transcription.app import create_app
    from nemo_server.transcription.engines.whisper import bundled_model_path
    from nemo_server.transcription.settings import TranscriptionSettings
    from nemo_server.transcription.testing import FEMALE, MALE, speak, wav_bytes
    from nemo_server.transcription.wer import edit_distance, normalise

    texts = SENTENCES[: args.sentences]
    voices = [MALE if i % 2 == 0 else FEMALE for i in range(len(texts))]
    clips = [wav_bytes(speak(t, v)) for t, v in zip(texts, voices, strict=True)]
    audio_s = sum((len(c) - 44) / 32_000 for c in clips)
    ref_words = sum(len(normalise(t)) for t in texts)

    # Raw faster-whisper, the baseline: decode in-process, transcribe, join segment texts.
    raw = WhisperModel(
        str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=args.threads
    )

    def run_raw(text: str, clip: bytes) -> tuple[int, float]:
        path = tmp / "clip.wav"
        path.write_bytes(clip)
        started = time.perf_counter()
        segments, _ = raw.transcribe(
            decode_audio(str(path)),
            language="en",
            beam_size=5,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        hyp = " ".join(s.text for s in segments)
        elapsed = time.perf_counter() - started
        return edit_distance(normalise(text), normalise(hyp)), elapsed

    settings = TranscriptionSettings(cpu_threads=args.threads, device="cpu")

    def auth() -> dict[str, str]:
        # Internal tokens live a minute: mint one per request, a benchmark runs longer.
        return internal_headers(settings.common, ALICE)

    raw_edits, raw_time, svc_edits, svc_time = 0, 0.0, 0, 0.0
    by_voice: dict[str, list[int]] = {MALE: [0, 0], FEMALE: [0, 0]}
    with TestClient(create_app(settings)) as client:

        def run_service(text: str, clip: bytes) -> tuple[int, float]:
            started = time.perf_counter()
            response = client.post(
                "/v1/audio/transcriptions",
                headers=auth(),
                files={"file": ("clip.wav", clip, "audio/wav")},
                data={"model": "whisper-1"},
            )
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            return edit_distance(normalise(text), normalise(response.json()["text"])), elapsed

        run_service(texts[0], clips[0])  # warm-up: the decoder pool starts its first worker
        run_raw(texts[0], clips[0])
        # Interleaved (alternating which goes first) so both see the same machine load.
        for i, (text, clip, voice) in enumerate(zip(texts, clips, voices, strict=True)):
            order = (run_raw, run_service) if i % 2 == 0 else (run_service, run_raw)
            for runner in order:
                edits, elapsed = runner(text, clip)
                if runner is run_raw:
                    raw_edits, raw_time = raw_edits + edits, raw_time + elapsed
                else:
                    svc_edits, svc_time = svc_edits + edits, svc_time + elapsed
                    by_voice[voice][0] += edits
                    by_voice[voice][1] += len(normalise(text))
        stream = None if args.no_stream else _stream(client, auth())

    raw_wer, svc_wer = raw_edits / ref_words, svc_edits / ref_words
    result = {
        "benchmark": "asr",
        "model": "whisper-tiny.en int8 cpu, beam 5, vad",
        "threads": args.threads,
        "files": len(texts),
        "audio_s": round(audio_s, 2),
        "reference_words": ref_words,
        "service_wer": round(svc_wer, 4),
        "raw_wer": round(raw_wer, 4),
        "service_wer_by_voice": {v: round(e / max(n, 1), 4) for v, (e, n) in by_voice.items()},
        "accuracy_ratio": round((1 - svc_wer) / (1 - raw_wer), 4),
        "service_rtf": round(svc_time / audio_s, 4),
        "raw_rtf": round(raw_time / audio_s, 4),
        "speed_ratio": round(raw_time / svc_time, 4),
        "stream": stream,
    }
    print(json.dumps(result))


def _stream(client, headers: dict[str, str]) -> dict:
    """Feed a two-voice conversation at real-time pace; collect each final's delay."""
    from nemo_server.transcription.testing import FEMALE, MALE, Turn, conversation
    from nemo_server.transcription.wer import word_error_rate

    talk = conversation(
        [
            Turn("A", "Good morning, shall we look at the budget for next quarter?", MALE, 0.8),
            Turn(
                "B",
                "Yes, I have the numbers here and they look better than last time.",
                FEMALE,
                0.8,
            ),
            Turn("A", "Great, what about the hiring plan for the new office?", MALE, 0.8),
            Turn("B", "We want two more engineers before the summer starts.", FEMALE, 0.8),
        ],
        tail_s=1.5,
    )
    pcm = (np.clip(talk.audio, -1, 1) * 32767).astype("<i2").tobytes()
    chunk = 3200  # 100 ms
    finals = []
    with client.websocket_connect("/v1/audio/stream", headers=headers) as ws:
        ws.receive_json()
        started = time.perf_counter()
        import threading

        def reader() -> None:
            while True:
                event = ws.receive_json()
                if event["type"] == "final":
                    finals.append(event)
                if event["type"] == "done":
                    return

        thread = threading.Thread(target=reader)
        thread.start()
        for i, at in enumerate(range(0, len(pcm), chunk)):
            # Real time: chunk i is sent when its audio would have been spoken.
            time.sleep(max(0.0, started + i * 0.1 - time.perf_counter()))
            ws.send_bytes(pcm[at : at + chunk])
        ws.send_json({"type": "end"})
        thread.join(timeout=60)
    delays = sorted(f["delay_s"] for f in finals)
    return {
        "finals": len(finals),
        "speakers": sorted({f["speaker"] for f in finals if f["speaker"]}),
        "wer": round(word_error_rate(talk.text, " ".join(f["text"] for f in finals)), 4),
        "final_delay_median_s": round(statistics.median(delays), 3) if delays else None,
        "final_delay_max_s": round(delays[-1], 3) if delays else None,
        "silence_to_close_s": 0.5,
    }


if __name__ == "__main__":
    sys.exit(main())
