"""Speech the tests and benchmarks make themselves: espeak-ng voices mixed into conversations.

Needs the `espeak-ng` program (Debian package `espeak-ng`). Nothing here runs in the service.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

MALE = "en-us"
FEMALE = "en-us+f3"


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = MALE, speed: int = 160) -> np.ndarray:
    """16 kHz mono float32 speech of `text`."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as handle:
        rate = handle.getframerate()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    return resample(audio, rate, 16_000)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio
    from scipy.signal import resample_poly

    g = np.gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    voice: str
    gap_s: float = 0.4  # silence before the turn; negative overlaps the previous turn


@dataclass
class Conversation:
    audio: np.ndarray
    reference: list[tuple[float, float, str]]  # (start, end, speaker) of voiced speech
    text: str


def conversation(turns: list[Turn], tail_s: float = 0.5) -> Conversation:
    """Mix turns into one track; the reference spans are where each voice is actually audible."""
    pieces = [(t, _trim(speak(t.text, t.voice))) for t in turns]
    cursor = 0.0
    placed = []
    for turn, audio in pieces:
        start = max(0.0, cursor + turn.gap_s)
        placed.append((start, turn, audio))
        cursor = start + len(audio) / 16_000
    total = int((cursor + tail_s) * 16_000)
    mix = np.zeros(total, dtype=np.float32)
    reference = []
    for start, turn, audio in placed:
        at = int(start * 16_000)
        mix[at : at + len(audio)] += audio
        for a, b in _voiced(audio):
            reference.append((start + a, start + b, turn.speaker))
    peak = float(np.abs(mix).max()) or 1.0
    return Conversation(mix / peak * 0.8, reference, " ".join(t.text for t in turns))


def _trim(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def _voiced(audio: np.ndarray, min_pause_s: float = 0.25) -> list[tuple[float, float]]:
    """Spans of audible speech (pauses over `min_pause_s` split them), in seconds."""
    frames = len(audio) // 160
    loud = np.array([np.abs(audio[i * 160 : (i + 1) * 160]).max() > 0.01 for i in range(frames)])
    spans: list[tuple[float, float]] = []
    start = None
    quiet = 0
    for i, on in enumerate(loud):
        if on:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet * 0.01 >= min_pause_s:
                spans.append((start * 0.01, (i - quiet + 1) * 0.01))
                start, quiet = None, 0
    if start is not None:
        spans.append((start * 0.01, (frames - quiet) * 0.01))
    return spans


def wav_bytes(audio: np.ndarray, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return out.getvalue()


def encode(audio: np.ndarray, container: str, codec: str, rate: int = 16_000) -> bytes:
    """Encode with PyAV (mp3, m4a/aac, ogg/opus, webm/opus, flac)."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format=container) as box:
        stream = box.add_stream(codec, rate=48_000 if codec == "libopus" else rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()
