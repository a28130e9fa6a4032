"""Decoding uploaded audio to 16 kHz mono float32 (errors shaped like the transcription service's).

Plain PCM WAV is read with the standard library; anything else goes through PyAV (FFmpeg),
imported lazily. Empty or corrupt files are 400, files that are not audio 415, too long 413.
"""

from __future__ import annotations

import io
import wave

import numpy as np

from nemo_server.common.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SAMPLE_RATE = 16000


def _resample(signal: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE or signal.size == 0:
        return signal.astype(np.float32)
    n = round(signal.size * SAMPLE_RATE / rate)
    positions = np.linspace(0, signal.size - 1, n)
    return np.interp(positions, np.arange(signal.size), signal).astype(np.float32)


def _read_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as handle:
        width, channels, rate = handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
        frames = handle.readframes(handle.getnframes())
    if width == 2:
        pcm = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        pcm = np.frombuffer(frames, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        pcm = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise wave.Error(f"unsupported sample width {width}")
    if channels > 1:
        pcm = pcm[: pcm.size - pcm.size % channels].reshape(-1, channels).mean(axis=1)
    return _resample(pcm, rate)


def _read_av(data: bytes) -> np.ndarray:
    import av

    try:
        container = av.open(io.BytesIO(data))
    except av.error.InvalidDataError as exc:
        raise UnsupportedMediaType(f"file is not audio: {exc}", param="file") from None
    except av.error.FFmpegError as exc:
        raise BadRequest(f"corrupt audio: {exc}", param="file") from None
    with container:
        if not container.streams.audio:
            raise UnsupportedMediaType("file is not audio: it has no audio stream", param="file")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise BadRequest(f"corrupt audio: {exc}", param="file") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 samples of an uploaded file."""
    if not data:
        raise BadRequest("the uploaded file is empty", param="file")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            signal = _read_wav(data)
        except (wave.Error, EOFError, ValueError):
            signal = _read_av(data)  # compressed WAV (e.g. mu-law) or a broken header
    else:
        signal = _read_av(data)
    if signal.size == 0:
        raise BadRequest("corrupt audio: no samples could be decoded", param="file")
    seconds = signal.size / SAMPLE_RATE
    if seconds > max_seconds:
        raise PayloadTooLarge(
            f"audio is {seconds:.0f} s long; at most {max_seconds:.0f} s is accepted", param="file"
        )
    return signal
