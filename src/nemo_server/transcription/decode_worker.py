"""Child process that decodes one untrusted audio file with PyAV (run by `audio.decode_file`).

`python -m nemo_server.transcription.decode_worker IN OUT MAX_SECONDS` writes 16 kHz mono
float32 samples to OUT. It runs under resource limits set by the parent, so a hostile file
can only kill this process. The exit code says what went wrong; the last stderr line explains.
"""

from __future__ import annotations

import sys

import numpy as np

NOT_AUDIO, CORRUPT, TOO_LONG = 10, 11, 12


def _fail(code: int, message: str) -> None:
    sys.stderr.write(message.replace("\n", " ")[:500] + "\n")
    sys.exit(code)


def main(src: str, dst: str, max_seconds: float) -> None:
    import av

    try:
        container = av.open(src, metadata_errors="ignore")
    except av.FFmpegError as exc:
        _fail(NOT_AUDIO, f"not a recognised audio file ({exc.strerror or exc})")
    try:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            _fail(NOT_AUDIO, f"the file ({container.format.name}) has no audio stream")
        stream = streams[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        limit = int(max_seconds * 16_000)
        written = 0
        with open(dst, "wb") as out:
            try:
                for frame in container.decode(stream):
                    for chunk in resampler.resample(frame):
                        samples = chunk.to_ndarray().reshape(-1).astype(np.float32)
                        written += len(samples)
                        if written > limit:
                            _fail(
                                TOO_LONG, f"audio is longer than the limit of {max_seconds:.0f} s"
                            )
                        out.write(samples.tobytes())
                for chunk in resampler.resample(None):
                    out.write(chunk.to_ndarray().reshape(-1).astype(np.float32).tobytes())
                    written += chunk.samples
            except av.FFmpegError as exc:
                # Frames decoded before the damage are kept only if there are some.
                if written == 0:
                    _fail(
                        CORRUPT,
                        f"the audio is corrupt and cannot be decoded ({exc.strerror or exc})",
                    )
        if written < 1600:  # under 0.1 s: a header with (almost) nothing behind it
            _fail(CORRUPT, "the file holds no decodable audio (empty or truncated)")
    finally:
        container.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
