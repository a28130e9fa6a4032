"""Decoding of untrusted audio with PyAV, meant to run in a separate, limited process.

`serve()` is the loop of a pooled worker process (see `audio.DecoderPool`): it reads
`{"src", "dst", "max_seconds"}` jobs as JSON lines on stdin and answers `{"code", "message"}`. A hostile file can
only crash, exhaust or hang this process; the parent then kills and replaces it.
"""

from __future__ import annotations

import json
import os
import resource
import sys

import numpy as np

OK, NOT_AUDIO, CORRUPT, TOO_LONG, FAILED = 0, 10, 11, 12, 13


class DecodeFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message.replace("\n", " ")[:500]


def decode(src: str, dst: str, max_seconds: float) -> None:
    """Write `src` as 16 kHz mono float32 samples to `dst`; raise `DecodeFailure` if unfit."""
    import av

    try:
        container = av.open(src, metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise DecodeFailure(
            NOT_AUDIO, f"not a recognised audio file ({exc.strerror or exc})"
        ) from None
    try:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            raise DecodeFailure(
                NOT_AUDIO, f"the file ({container.format.name}) has no audio stream"
            )
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        limit = int(max_seconds * 16_000)
        written = 0
        with open(dst, "wb") as out:
            try:
                for frame in container.decode(streams[0]):
                    for chunk in resampler.resample(frame):
                        samples = chunk.to_ndarray().reshape(-1).astype(np.float32)
                        written += len(samples)
                        if written > limit:
                            raise DecodeFailure(
                                TOO_LONG, f"audio is longer than the limit of {max_seconds:.0f} s"
                            )
                        out.write(samples.tobytes())
                for chunk in resampler.resample(None):
                    out.write(chunk.to_ndarray().reshape(-1).astype(np.float32).tobytes())
                    written += chunk.samples
            except av.FFmpegError as exc:
                # Frames decoded before the damage are kept only if there are some.
                if written == 0:
                    raise DecodeFailure(
                        CORRUPT,
                        f"the audio is corrupt and cannot be decoded ({exc.strerror or exc})",
                    ) from None
        if written < 1600:  # under 0.1 s: a header with (almost) nothing behind it
            raise DecodeFailure(CORRUPT, "the file holds no decodable audio (empty or truncated)")
    finally:
        container.close()


def serve(memory_mb: int) -> None:
    """Worker loop over stdin/stdout: one JSON job per line in, one JSON answer per line out.

    Run as `python -m nemo_server.transcription.decode_worker MEMORY_MB` (a plain subprocess,
    so it never depends on how the parent process was started).
    """
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(5)
    import av  # noqa: F401  (imported once, before the first job: that is the point of a pool)

    for line in sys.stdin:
        job = json.loads(line)
        try:
            decode(job["src"], job["dst"], float(job["max_seconds"]))
            answer = (OK, "")
        except DecodeFailure as exc:
            answer = (exc.code, exc.message)
        except Exception as exc:  # MemoryError and friends: report, then let the parent recycle
            answer = (FAILED, f"{type(exc).__name__}: {exc}"[:500])
        sys.stdout.write(json.dumps({"code": answer[0], "message": answer[1]}) + "\n")
        sys.stdout.flush()
        if answer[0] == FAILED:
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]))
