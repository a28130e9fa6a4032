"""Decoding uploaded audio safely: PyAV in separate, resource-limited processes.

A hostile or broken file can crash FFmpeg, eat memory or loop; in a worker process with an
address-space limit and a wall-clock timeout it only costs that worker, which is replaced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nemo_server.common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from nemo_server.transcription.decode_worker import CORRUPT, NOT_AUDIO, OK, TOO_LONG

log = logging.getLogger("nemo.transcription.audio")


@dataclass(frozen=True)
class DecodeLimits:
    timeout_s: float = 120.0
    memory_mb: int = 2048
    max_seconds: float = 4 * 3600.0


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    jobs: int = 0


class DecoderPool:
    """Long-lived decoding processes (PyAV imported once), each under an address-space limit.

    A worker that crashes, is killed by its limit, or runs past the timeout is killed and
    replaced; workers are also recycled after `max_jobs` files.
    """

    def __init__(self, limits: DecodeLimits, size: int = 2, max_jobs: int = 50) -> None:
        self.limits = limits
        self.max_jobs = max_jobs
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def _start(self) -> _Worker:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nemo_server.transcription.decode_worker",
                str(self.limits.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # FFmpeg's complaints about hostile files go nowhere
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        return _Worker(process)

    def _take(self) -> _Worker:
        """An idle live worker, or a new one (one that died while idle is dropped)."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self._start()
            if worker.process.poll() is None:
                return worker
            self._kill(worker)

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if worker.process.poll() is None:
            worker.process.kill()
        worker.process.wait(timeout=5)
        for stream in (worker.process.stdin, worker.process.stdout):
            if stream is not None:
                stream.close()

    def _ask(self, worker: _Worker, job: dict[str, Any]) -> tuple[int, str]:
        stdin, stdout = worker.process.stdin, worker.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(job).encode() + b"\n")
            stdin.flush()
        except OSError:
            return -2, "the audio could not be decoded (the decoder stopped)"
        ready, _, _ = select.select([stdout], [], [], self.limits.timeout_s)
        if not ready:
            return -1, f"decoding the audio took longer than {self.limits.timeout_s:g} s"
        line = stdout.readline()
        if not line:
            return -2, "the audio could not be decoded (the decoder stopped)"
        answer = json.loads(line)
        return int(answer["code"]), str(answer["message"])

    def decode(self, path: Path, out: Path) -> tuple[int, str]:
        """Decode `path` into `out`; the worker's (code, message), or a crash/timeout code."""
        job = {"src": str(path), "dst": str(out), "max_seconds": self.limits.max_seconds}
        with self._slots:
            worker = self._take()
            code, message = self._ask(worker, job)
            worker.jobs += 1
            if code == OK and worker.jobs < self.max_jobs and not self._closed:
                self._idle.put(worker)
            else:
                self._kill(worker)
            return code, message

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._kill(self._idle.get_nowait())
            except queue.Empty:
                return


def decode_file(path: Path, pool: DecoderPool) -> np.ndarray:
    """Decode `path` to 16 kHz mono float32; raises 415/400/413 errors, never anything else."""
    with tempfile.TemporaryDirectory(prefix="nemo-decode-") as tmp:
        target = Path(tmp) / "pcm.f32"
        code, detail = pool.decode(path, target)
        if code == OK:
            return np.fromfile(target, dtype=np.float32)
    if code == NOT_AUDIO:
        raise UnsupportedMediaType(f"file is not audio: {detail}", param="file")
    if code == TOO_LONG:
        raise PayloadTooLarge(detail, param="file")
    if code == CORRUPT:
        raise BadRequest(f"corrupt audio: {detail}", param="file")
    log.warning("decoder failed (%s): %s", code, detail)
    raise BadRequest(
        detail if code < 0 else f"the audio could not be decoded: {detail}", param="file"
    )


async def decode_bytes(data: bytes, pool: DecoderPool, suffix: str = "") -> np.ndarray:
    """Decode an upload held in memory (the subprocess runs off the event loop)."""
    if not data:
        raise BadRequest("the uploaded file is empty", param="file")

    def work() -> np.ndarray:
        with tempfile.NamedTemporaryFile(prefix="nemo-upload-", suffix=suffix[-16:]) as handle:
            handle.write(data)
            handle.flush()
            return decode_file(Path(handle.name), pool)

    return await asyncio.to_thread(work)


class IncrementalDecoder:
    """Decodes a container stream (browser webm/ogg opus) that arrives in pieces.

    Each decode runs over everything received so far in the limited subprocess and hands out
    only the samples not handed out before; the last 0.1 s is held back until `finish()`
    because the resampler's tail may still change when more data arrives.
    """

    _HOLD = 1600

    def __init__(self, pool: DecoderPool, max_bytes: int, suffix: str = ".webm") -> None:
        self.pool = pool
        self.max_bytes = max_bytes
        self.suffix = suffix
        self._data = bytearray()
        self._emitted = 0

    def push(self, chunk: bytes, *, decode: bool = True) -> np.ndarray:
        """Add bytes; when `decode`, return the new samples (16 kHz float32)."""
        if len(self._data) + len(chunk) > self.max_bytes:
            raise PayloadTooLarge(
                f"stream is larger than the limit of {self.max_bytes} bytes", param="stream"
            )
        self._data += chunk
        return self._decode(final=False) if decode else np.zeros(0, dtype=np.float32)

    def finish(self) -> np.ndarray:
        return self._decode(final=True)

    def _decode(self, final: bool) -> np.ndarray:
        with tempfile.NamedTemporaryFile(prefix="nemo-stream-", suffix=self.suffix) as handle:
            handle.write(self._data)
            handle.flush()
            try:
                audio = decode_file(Path(handle.name), self.pool)
            except BadRequest:
                if final:
                    raise
                return np.zeros(0, dtype=np.float32)  # not enough of the stream yet
        ready = len(audio) if final else max(self._emitted, len(audio) - self._HOLD)
        new = audio[self._emitted : ready]
        self._emitted = ready
        return new
