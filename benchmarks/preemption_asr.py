"""Pre-emption benchmark with real ASR as the background: a durable transcription job vs a
foreground requester, one run (issue 3, item 9, "the same benchmark with real ASR").

The background is the transcription service's own job runner (whisper tiny.en, beam 5, its
store and fenced checkpoints) leasing from a real coordinator process over HTTP, as the service
runs with `NEMO_TRANSCRIPTION_GPU_LEASES=coordinator` (client from `service_urls`). The service
(its real app, lifespan and upload path) is served by uvicorn in a thread of this process so its
units can be observed: the engine is wrapped to time each `transcribe`, the store's `checkpoint`
to record each committed unit. A unit = `job_chunk_s` s of audio: ASR, validate, checkpoint.

The foreground is CPU-bound work of fixed size, the kind a foreground GPU user does: tiny.en
(its own model instance, beam 1) transcribing the same 4 s utterance. On this CPU-only machine
the background's ASR competes for the same cores, so the background pausing is what keeps the
foreground's throughput; with a lease that does not pause it, the ratio would fall.

For each chunk size it reports: grant latency p50/p99 for requests arriving at random phases of
a running unit, against the measured unit, and the protocol's overhead (grant latency minus what
was left of the unit in flight; goal p99 <= 20 ms, i.e. p99 within one unit + 20 ms); foreground
throughput with the job running / without (goal >= 0.9); and proof: the pre-empted job's
transcript equals the same audio's job run with no pre-emption, and its checkpoints cover the
audio once, in order, with as many ASR calls as committed units.

    flock /tmp/bench.lock .venv/bin/python benchmarks/preemption_asr.py [--chunks-s 5,10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from nemo_server.common.auth import InternalTokenCodec
from nemo_server.common.gpu import LeaseClient, Priority
from nemo_server.common.gpu_http import HttpLeaseClient
from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, ServerThread, internal_headers
from nemo_server.transcription.app import create_app
from nemo_server.transcription.engines import build_asr
from nemo_server.transcription.engines.base import AsrOptions
from nemo_server.transcription.settings import BUNDLED_MODEL, TranscriptionSettings
from nemo_server.transcription.testing import speak, wav_bytes
from preemption import BG_MB, BUDGET, FG_MB, gpu_info, pct, start_coordinator

SENTENCES = [
    "The committee will meet on Thursday to review the budget for the coming year.",
    "Please remember to bring the signed forms and a copy of your report.",
    "Our delivery trucks leave the warehouse every morning at seven o'clock.",
    "The new library opens next month with a larger reading room for children.",
    "The orchestra played two symphonies and a short piece by a local composer.",
    "Farmers in the valley expect a good harvest if the rain holds off.",
]
FG_TEXT = "Set a reminder for the dentist appointment tomorrow at nine."


def make_audio(seconds: float) -> np.ndarray:
    """Speech of at least `seconds`: the sentences in turn, at varied speeds, with pauses."""
    pause = np.zeros(8_000, dtype=np.float32)
    parts, total, i = [], 0, 0
    while total < seconds * 16_000:
        speech = speak(SENTENCES[i % len(SENTENCES)], speed=140 + 10 * (i % 5))
        parts += [speech, pause]
        total += len(speech) + len(pause)
        i += 1
    return np.concatenate(parts)


class TimedAsr:
    """The real engine, with the start time of every `transcribe` call (one per unit)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.starts: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def transcribe(self, audio: np.ndarray, options: AsrOptions) -> Any:
        self.starts.append(time.perf_counter())
        return self._engine.transcribe(audio, options)


@dataclass
class Unit:
    job_id: str
    started: float  # the unit's transcribe began
    ended: float  # its checkpoint was committed
    start_s: float  # audio it covered
    end_s: float
    saved: bool


def observe(app: Any, asr: TimedAsr) -> list[Unit]:
    """Record every checkpoint the job runner commits (an observer: behaviour unchanged)."""
    store = app.state.transcription.store
    original, units = store.checkpoint, []

    def checkpoint(job: Any, segments: list, processed_s: float, *rest: Any) -> bool:
        saved = original(job, segments, processed_s, *rest)
        ended = time.perf_counter()  # (list.append is atomic: one job runs at a time anyway)
        units.append(Unit(job.id, asr.starts[-1], ended, job.processed_s, processed_s, saved))
        return saved

    store.checkpoint = checkpoint
    return units


class FreshToken(httpx.Auth):
    """A new internal token (as the gateway mints) per request: one outlives the run."""

    def __init__(self, common: CommonSettings) -> None:
        self.common = common

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers.update(internal_headers(self.common, ALICE))
        yield request


class Bench:
    """One transcription service (one chunk size) on the shared coordinator."""

    def __init__(
        self, server: ServerThread, asr: TimedAsr, units: list[Unit], common: Any, chunk_s: float
    ) -> None:
        self.server, self.asr, self.units, self.chunk_s = server, asr, units, chunk_s
        self.http = httpx.AsyncClient(base_url=server.url, auth=FreshToken(common), timeout=120)

    async def submit(self, audio: np.ndarray) -> str:
        files = {"file": ("talk.wav", wav_bytes(audio), "audio/wav")}
        r = await self.http.post("/v1/transcriptions/jobs", files=files, data={"language": "en"})
        return r.raise_for_status().json()["id"]

    async def unit_started(self, seen: int) -> None:
        """Return once a unit has started since `seen` transcribe calls."""
        deadline = time.monotonic() + 60
        while len(self.asr.starts) == seen:
            if time.monotonic() > deadline:
                raise RuntimeError("no unit started (job finished early? raise --spare-units)")
            await asyncio.sleep(0.005)

    async def job(self, job_id: str) -> dict[str, Any]:
        return (await self.http.get(f"/v1/transcriptions/jobs/{job_id}")).raise_for_status().json()

    async def finish(self, job_id: str) -> dict[str, Any]:
        """Wait for the job (as a client polls); its transcript and committed units."""
        while (job := await self.job(job_id))["status"] not in ("completed", "failed"):  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # a client polling the service's API
        store = self.server.server.config.app.state.transcription.store
        record = await asyncio.to_thread(store.get_transcript, ALICE.user_id, job["transcript_id"])
        job["segments_list"] = [(s.start, s.end, s.text) for s in record.segments]
        job["units"] = [u for u in self.units if u.job_id == job_id]
        return job


def proof(job: dict[str, Any], asr_calls: int) -> dict[str, Any]:
    units = job["units"]
    covered = [(u.start_s, u.end_s) for u in units]
    return {
        "units": len(units),
        "asr_calls": asr_calls,
        "every_checkpoint_saved": all(u.saved for u in units),
        "contiguous_once": bool(units)
        and covered[0][0] == 0
        and all(a[1] == b[0] for a, b in itertools.pairwise(covered))
        and abs(covered[-1][1] - job["duration"]) < 1e-3,  # the API rounds to 1 ms
        "no_unit_redone": asr_calls == len(units),
        "segments": len(job["segments_list"]),
    }


async def foreground(client: LeaseClient, work: Any) -> float:
    started = time.perf_counter()
    async with client.lease("bench:fg", priority=Priority.FOREGROUND, vram_mb=FG_MB, ttl_s=10):
        granted = time.perf_counter() - started
        await asyncio.to_thread(work)
    return granted


async def closed_loop(client: LeaseClient, work: Any, seconds: float) -> tuple[float, float]:
    """Foreground requests per second back to back, and the time they spent waiting."""
    done, waited, start = 0, 0.0, time.perf_counter()
    while time.perf_counter() < start + seconds:
        waited += await foreground(client, work)
        done += 1
    return done / (time.perf_counter() - start), waited


async def latency(
    bench: Bench, client: LeaseClient, work: Any, job_id: str, unit_s: float, n: int, rng: Any
) -> dict[str, Any]:
    """n requests, each at a random phase of a running unit (after the job resumed)."""
    asks: list[tuple[float, float]] = []
    for _ in range(n):
        await bench.unit_started(len(bench.asr.starts))  # the job resumed: a unit is running
        await asyncio.sleep(rng.uniform(0, unit_s))
        t0 = time.perf_counter()
        asks.append((t0, await foreground(client, work)))
    units = [u for u in bench.units if u.job_id == job_id]
    waits, overheads, inflight = [], [], []
    for t0, wait in asks:
        unit = max((u for u in units if u.started <= t0), key=lambda u: u.started)
        waits.append(wait)
        inflight.append(unit.ended - unit.started)
        overheads.append(wait - max(0.0, unit.ended - t0))  # beyond the rest of its unit
    # each wait minus the length of the unit that was in flight when it was asked
    excess = [w - d for w, d in zip(waits, inflight, strict=True)]
    return {
        "requests": n,
        "grant_p50_ms": round(statistics.median(waits) * 1000, 1),
        "grant_p99_ms": round(pct(waits, 0.99) * 1000, 1),
        "overhead_p50_ms": round(statistics.median(overheads) * 1000, 1),
        "overhead_p99_ms": round(pct(overheads, 0.99) * 1000, 1),
        "p99_within_unit_plus_20ms": pct(excess, 0.99) <= 0.020,
    }


def unit_ms(units: list[Unit]) -> dict[str, float]:
    d = [(u.ended - u.started) * 1000 for u in units[:-1]]  # the last one is a short tail
    return {"p50": round(statistics.median(d), 1), "p99": round(pct(d, 0.99), 1)}


async def throughput(bench: Bench, client: LeaseClient, work: Any, args: Any) -> dict:
    """Closed-loop foreground windows, alone and with a fresh job running, alternated
    (A S A S ... A): each shared window is divided by the mean of the alone windows around it,
    which cancels slow drift in the machine's other load. Each shared window starts while a
    unit of its job is running, so the foreground pays the wait for that unit too."""
    alone = [(await closed_loop(client, work, args.seconds))[0]]
    shared, waited, bg_units = [], 0.0, 0
    audio = make_audio(6 * bench.chunk_s)
    for _ in range(args.rounds):
        seen = len(bench.asr.starts)
        job_id = await bench.submit(audio)
        await bench.unit_started(seen)
        rate, w = await closed_loop(client, work, args.seconds)
        bg_units += len(bench.asr.starts) - seen - 1
        shared.append(rate)
        waited += w
        # cancel within the linger window, while the job waits for the lease (no unit running)
        (await bench.http.post(f"/v1/transcriptions/jobs/{job_id}/cancel")).raise_for_status()
        await asyncio.sleep(1.0)  # a unit that started anyway ends before the alone window
        alone.append((await closed_loop(client, work, args.seconds))[0])
    ratios = [x / ((a + b) / 2) for x, a, b in zip(shared, alone, alone[1:], strict=False)]
    return {
        "fg_work": "tiny.en beam 1 on a 4 s utterance, in a thread",
        "fg_per_s_alone": [round(a, 3) for a in alone],
        "fg_per_s_with_background": [round(x, 3) for x in shared],
        "ratio": round(statistics.mean(ratios), 3),
        "ratio_per_round": [round(r, 3) for r in ratios],
        "fg_waited_for_grants_s": round(waited, 3),
        "bg_units_started_while_fg_looped": bg_units,
    }


async def run_chunk(args: Any, chunk_s: float, url: str, common: CommonSettings) -> dict:
    settings = TranscriptionSettings(
        common=common, job_chunk_s=chunk_s, gpu_leases="coordinator", gpu_vram_mb=BG_MB
    )
    asr = TimedAsr(await asyncio.to_thread(build_asr, BUNDLED_MODEL, None, settings))
    fg_engine = await asyncio.to_thread(build_asr, BUNDLED_MODEL, None, settings)
    clip, options = speak(FG_TEXT), AsrOptions(language="en", word_timestamps=False, beam_size=1)

    def work() -> None:  # the foreground's fixed-size CPU-bound work
        fg_engine.transcribe(clip, options)

    audio = make_audio(chunk_s * (args.requests + args.spare_units))
    app = create_app(settings, asr_engine=asr)  # type: ignore[arg-type]
    client = HttpLeaseClient(url, InternalTokenCodec(common.secrets().get("internal_key")))
    with ServerThread(app) as server:
        bench = Bench(server, asr, observe(app, asr), common, chunk_s)
        work()  # warm up the foreground model
        calls = len(asr.starts)
        base = await bench.finish(await bench.submit(audio))  # no pre-emption at all
        base_calls, calls = len(asr.starts) - calls, len(asr.starts)
        job_id = await bench.submit(audio)
        unit_s = unit_ms(base["units"])["p50"] / 1000
        rng = random.Random(args.seed)
        lat = await latency(bench, client, work, job_id, unit_s, args.requests, rng)
        lat["job_still_running"] = (await bench.job(job_id))["status"] != "completed"
        lat["goal_p99_ms"] = round(unit_ms(base["units"])["p99"] + 20, 1)  # longest unit + 20
        lat["grant_p99_within_goal"] = lat["grant_p99_ms"] <= lat["goal_p99_ms"]
        done = await bench.finish(job_id)
        calls = len(asr.starts) - calls
        tput = await throughput(bench, client, work, args)
        await bench.http.aclose()
    await client.aclose()
    return {
        "job_chunk_s": chunk_s,
        "audio_s": round(len(audio) / 16_000, 1),
        "unit_measured_ms": unit_ms(base["units"]),
        "unit_measured_under_preemption_ms": unit_ms(done["units"]),
        "latency": lat,
        "throughput": tput,
        "proof": {
            "job_preemptions": done["preemptions"],
            "transcript_identical_to_unpreempted": done["segments_list"] == base["segments_list"],
            "same_unit_boundaries": [(u.start_s, u.end_s) for u in done["units"]]
            == [(u.start_s, u.end_s) for u in base["units"]],
            "unpreempted": proof(base, base_calls),
            "preempted": proof(done, calls),
        },
    }


async def main(args: argparse.Namespace) -> dict:
    data = tempfile.mkdtemp(prefix="nemo-bench-asr-")
    url, _, coordinator = start_coordinator(args.linger_s, data)
    # the coordinator's data and secrets (its internal key): the service talks to it with them
    paths = {"data_dir": Path(data), "secrets_dir": Path(data) / "none"}
    common = CommonSettings(**paths, service_urls={"coordinator": url})  # type: ignore[arg-type]
    out: dict[str, Any] = dict(benchmark="preemption_asr", budget_mb=BUDGET, bg_mb=BG_MB)
    out.update(fg_mb=FG_MB, linger_s=args.linger_s, cpus=os.cpu_count(), gpu=gpu_info(), runs=[])
    loads: list[float] = []

    async def sample() -> None:  # the machine is shared: say how busy it was meanwhile
        while True:
            loads.append(os.getloadavg()[0])
            await asyncio.sleep(5)

    sampler = asyncio.create_task(sample())
    try:
        for chunk_s in [float(c) for c in args.chunks_s.split(",")]:
            out["runs"].append(await run_chunk(args, chunk_s, url, common))
    finally:
        sampler.cancel()
        coordinator.terminate()
        coordinator.wait(timeout=10)
    out["load_avg_1m_during"] = [min(loads), round(statistics.mean(loads), 2), max(loads)]
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks-s", default="5,10", help="job_chunk_s values (>= 5)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--spare-units", type=int, default=12, help="audio beyond the requests")
    parser.add_argument("--seconds", type=float, default=8.0, help="one closed-loop window")
    parser.add_argument("--rounds", type=int, default=3, help="shared windows (alone: +1)")
    parser.add_argument("--linger-s", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
