"""Durable transcription jobs: chunked, checkpointed per chunk, pre-emptible on the GPU.

A job's decoded audio waits in the data dir; its transcript's segments are written chunk by
chunk together with the checkpoint (`processed_s`, `next_idx`) in one transaction, so a job
stopped anywhere (pre-emption, cancel, crash, restart) resumes with no segment lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import asdict

import numpy as np

from nemo_server.common.auth import Principal
from nemo_server.common.errors import Conflict, NemoError, NotFound, ServiceUnavailable
from nemo_server.common.gpu import Lease, Priority, run_preemptible
from nemo_server.transcription.engines.base import SAMPLE_RATE
from nemo_server.transcription.labels import assign_speakers
from nemo_server.transcription.models import Job
from nemo_server.transcription.service import Request, TranscriptionService
from nemo_server.transcription.vault import AudioVault

log = logging.getLogger("nemo.transcription.jobs")

FINISHED = ("completed", "failed", "cancelled")


def chunk_end(audio: np.ndarray, start: int, chunk: int, search: int) -> int:
    """End of the chunk starting at `start`: the quietest 20 ms in the last `search` samples
    before `start + chunk`, so a chunk boundary does not cut a word in two."""
    end = start + chunk
    if end >= len(audio):
        return len(audio)
    lo = max(start + chunk // 2, end - search)
    window = audio[lo:end]
    frame = 320
    n = len(window) // frame
    if n == 0:
        return end
    energy = (window[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


class JobRunner:
    """Runs jobs in the background at BACKGROUND priority; resumes unfinished ones at start."""

    def __init__(self, service: TranscriptionService) -> None:
        self.service = service
        self.settings = service.settings
        self.store = service.store
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(self.settings.job_workers)
        self.vault = AudioVault.for_settings(self.settings, service.store.db)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._keeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take over every unfinished job nobody else runs; keep doing so in the background."""
        await self._sweep()
        self._keeper = asyncio.create_task(self._keep(), name="transcription-job-keeper")

    async def _keep(self) -> None:
        """Renew our claims and adopt jobs whose process died, every third of a claim."""
        while True:
            await asyncio.sleep(self.settings.job_claim_s / 3)
            try:
                await asyncio.to_thread(
                    self.store.renew, self.owner, list(self._tasks), self.settings.job_claim_s
                )
                await self._sweep()
            except Exception:  # a database hiccup must not end the keeper
                log.exception("job keeper round failed")

    async def _sweep(self) -> None:
        for job in await asyncio.to_thread(self.store.active_jobs):
            if job.id in self._tasks:
                continue
            claimed = await asyncio.to_thread(
                self.store.claim, job.id, self.owner, self.settings.job_claim_s
            )
            if not claimed:
                continue
            if await asyncio.to_thread(self.vault.exists, job.id):
                await asyncio.to_thread(self.store.set_job, job.id, status="queued")
                self._spawn(job.id)
            else:
                await asyncio.to_thread(
                    self.store.set_job, job.id, status="failed", error="job audio is missing"
                )

    async def stop(self) -> None:
        """Stop running jobs and release them (another process, or the next start, resumes)."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.release_claims, self.owner)

    async def submit(
        self, principal: Principal, audio: np.ndarray, req: Request, filename: str | None
    ) -> Job:
        """Store the audio and a queued job; it starts as soon as a worker slot is free."""
        model = self.service.models.resolve(req.model)
        engine = await self.service.engine(model)
        self.service.options(engine, req)  # validate language now, not minutes later
        if req.diarize:
            self.service.bounds(req)
        req.model = model
        transcript = await asyncio.to_thread(
            self.store.create_transcript,
            principal.user_id,
            source="job",
            filename=(filename or None) and filename[:255],
            model=model,
            language=req.language,
            duration_s=len(audio) / SAMPLE_RATE,
            diarized=req.diarize,
            complete=False,
        )
        job = await asyncio.to_thread(
            self.store.create_job,
            principal.user_id,
            transcript.id,
            len(audio) / SAMPLE_RATE,
            asdict(req),
            self.owner,
            self.settings.job_claim_s,
        )
        await asyncio.to_thread(self.vault.save, job.id, audio)
        self._spawn(job.id)
        return job

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        job = await asyncio.to_thread(self.store.get_job, job_id, principal.user_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", param="job_id")
        if job.status in FINISHED:
            raise Conflict(f"job {job_id!r} is already {job.status}", param="job_id")
        await asyncio.to_thread(self.store.set_job, job_id, status="cancelled")
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
        self._discard_audio(job_id)
        return await asyncio.to_thread(self.store.get_job, job_id)  # type: ignore[return-value]

    def _spawn(self, job_id: str) -> None:
        task = asyncio.create_task(self._run(job_id), name=f"transcription-job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    def _discard_audio(self, job_id: str) -> None:
        self.vault.delete(job_id)

    async def _run(self, job_id: str) -> None:
        backoff = 1.0
        while True:
            try:
                async with self._slots:
                    await self._execute(job_id)
                return
            except asyncio.CancelledError:
                raise
            except ServiceUnavailable as exc:
                # The coordinator is down or the GPU stays busy: a durable job waits, it does
                # not fail. Its checkpoint is in the database; retry with backoff.
                log.warning("job %s waits for the GPU coordinator: %s", job_id, exc.message)
                await asyncio.to_thread(
                    self.store.set_job, job_id, status="waiting_gpu", error=exc.message
                )
                await asyncio.sleep(backoff)
                backoff = min(60.0, backoff * 2)
            except Exception as exc:
                message = (
                    exc.message if isinstance(exc, NemoError) else f"{type(exc).__name__}: {exc}"
                )
                log.exception("job %s failed", job_id)
                await asyncio.to_thread(self.store.set_job, job_id, status="failed", error=message)
                self._discard_audio(job_id)
                return

    async def _execute(self, job_id: str) -> None:
        job = await asyncio.to_thread(self.store.get_job, job_id)
        if job is None or job.status in FINISHED:
            return
        audio = await asyncio.to_thread(self.vault.load, job_id)
        req = Request(**job.options)
        engine = await self.service.engine(req.model or self.settings.default_model)
        options = self.service.options(engine, req, beam_size=self.settings.beam_size)
        chunk = int(self.settings.job_chunk_s * SAMPLE_RATE)

        async def unit(lease: Lease) -> bool:
            current = await asyncio.to_thread(self.store.get_job, job_id)
            if current is None or current.status == "cancelled" or current.owner != self.owner:
                return False  # cancelled, or taken over by another process
            if current.status != "running":
                await asyncio.to_thread(self.store.set_job, job_id, status="running", error=None)
            start = round(current.processed_s * SAMPLE_RATE)
            if start >= len(audio):
                await self._finish(current, audio, req)
                return False
            end = chunk_end(audio, start, chunk, search=2 * SAMPLE_RATE)
            result = await asyncio.to_thread(engine.transcribe, audio[start:end], options)
            segments = [s.shifted(start / SAMPLE_RATE) for s in result.segments]
            await lease.validate()  # fencing: never checkpoint under a stale lease
            await asyncio.to_thread(
                self.store.checkpoint,
                current,
                segments,
                end / SAMPLE_RATE,
                current.next_idx,
                result.language,
            )
            if lease.preempt_requested:
                await asyncio.to_thread(
                    self.store.set_job,
                    job_id,
                    status="waiting_gpu",
                    preemptions=current.preemptions + 1,
                )
            return True

        await run_preemptible(
            self.service.leases,
            f"transcription:{job_id}",
            unit,
            priority=Priority.BACKGROUND,
            vram_mb=self.settings.gpu_vram_mb,
            wait_timeout_s=None,
        )

    async def _finish(self, job: Job, audio: np.ndarray, req: Request) -> None:
        """Last unit: diarize the whole recording (speakers must agree across chunks)."""
        if req.diarize:
            record = await asyncio.to_thread(
                self.store.get_transcript, job.user_id, job.transcript_id
            )
            bounds = self.service.bounds(req)
            diarizer = await asyncio.to_thread(self.service.diarizers.get)
            turns = await asyncio.to_thread(diarizer.diarize, audio, bounds)
            segments = assign_speakers(record.segments if record else [], turns)
            await asyncio.to_thread(self.store.replace_segments, job.transcript_id, segments)
        await asyncio.to_thread(self.store.complete_job, job)
        self._discard_audio(job.id)
