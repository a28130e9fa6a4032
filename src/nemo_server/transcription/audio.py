"""Decoding uploaded audio safely: PyAV in a separate, resource-limited process.

A hostile or broken file can crash FFmpeg, eat memory or loop; in a child process with an
address-space limit, a CPU-time limit and a wall-clock timeout it only costs that child.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nemo_server.common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from nemo_server.transcription.decode_worker import CORRUPT, NOT_AUDIO, TOO_LONG


@dataclass(frozen=True)
class DecodeLimits:
    timeout_s: float = 120.0
    memory_mb: int = 2048
    max_seconds: float = 4 * 3600.0


def _limit(memory_mb: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(5)


def decode_file(path: Path, limits: DecodeLimits, out: Path | None = None) -> np.ndarray:
    """Decode `path` to 16 kHz mono float32; raises 415/400/413 errors, never anything else."""
    with tempfile.TemporaryDirectory(prefix="nemo-decode-") as tmp:
        target = out or Path(tmp) / "pcm.f32"
        cmd = [
            sys.executable,
            "-m",
            "nemo_server.transcription.decode_worker",
            str(path),
            str(target),
            str(limits.max_seconds),
        ]
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                timeout=limits.timeout_s,
                preexec_fn=lambda: _limit(limits.memory_mb, int(limits.timeout_s) + 1),
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BadRequest(
                f"decoding the audio took longer than {limits.timeout_s:.0f} s", param="file"
            ) from None
        message = done.stderr.decode(errors="replace").strip().splitlines()
        detail = message[-1] if message else ""
        if done.returncode == NOT_AUDIO:
            raise UnsupportedMediaType(f"file is not audio: {detail}", param="file")
        if done.returncode == TOO_LONG:
            raise PayloadTooLarge(detail, param="file")
        if done.returncode == CORRUPT:
            raise BadRequest(f"corrupt audio: {detail}", param="file")
        if done.returncode != 0:
            # Killed by a signal (memory, CPU) or crashed inside FFmpeg.
            raise BadRequest(
                f"the audio could not be decoded (decoder stopped with status {done.returncode})",
                param="file",
            )
        return np.fromfile(target, dtype=np.float32)


async def decode_bytes(data: bytes, limits: DecodeLimits, suffix: str = "") -> np.ndarray:
    """Decode an upload held in memory (the subprocess runs off the event loop)."""
    if not data:
        raise BadRequest("the uploaded file is empty", param="file")

    def work() -> np.ndarray:
        with tempfile.NamedTemporaryFile(prefix="nemo-upload-", suffix=suffix[-16:]) as handle:
            handle.write(data)
            handle.flush()
            return decode_file(Path(handle.name), limits)

    return await asyncio.to_thread(work)


class IncrementalDecoder:
    """Decodes a container stream (browser webm/ogg opus) that arrives in pieces.

    Each decode runs over everything received so far in the limited subprocess and hands out
    only the samples not handed out before; the last 0.1 s is held back until `finish()`
    because the resampler's tail may still change when more data arrives.
    """

    _HOLD = 1600

    def __init__(self, limits: DecodeLimits, max_bytes: int, suffix: str = ".webm") -> None:
        self.limits = limits
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
                audio = decode_file(Path(handle.name), self.limits)
            except BadRequest:
                if final:
                    raise
                return np.zeros(0, dtype=np.float32)  # not enough of the stream yet
        ready = len(audio) if final else max(self._emitted, len(audio) - self._HOLD)
        new = audio[self._emitted : ready]
        self._emitted = ready
        return new
