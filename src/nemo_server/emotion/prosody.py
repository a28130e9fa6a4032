"""Prosody of speech segments: pitch, energy and speaking rate, and arousal/valence from them.

Pitch is the normalised autocorrelation peak of 40 ms frames (10 ms hop) between 60 and 400 Hz.
Arousal rises with loudness, pitch movement, pitch above the speaker's own median and speaking
rate; prosodic valence is a weak cue (flat, quiet, slow speech reads as negative) and is blended
with the transcript's text emotion by the service. The reference levels are those of
conversational speech; the output is squashed to [-1, 1] with tanh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 640  # 40 ms at 16 kHz
HOP = 160  # 10 ms
F0_MIN, F0_MAX = 60.0, 400.0
VOICING_THRESHOLD = 0.45
REF_ENERGY_DB, ENERGY_SCALE_DB = -26.0, 8.0
REF_VARIABILITY_ST, VARIABILITY_SCALE_ST = 2.5, 1.5
REF_RATE_WPS, RATE_SCALE_WPS = 2.7, 1.0


@dataclass(frozen=True)
class FrameTrack:
    """Per-frame pitch (Hz, NaN when unvoiced) and level (dBFS) of a whole recording."""

    f0: np.ndarray
    level_db: np.ndarray
    sample_rate: int

    def frames_between(self, start: float, end: float) -> slice:
        # Frame i is centred on i * HOP + FRAME / 2 samples.
        first = max(0, round((start * self.sample_rate - FRAME / 2) / HOP))
        last = max(first + 1, round((end * self.sample_rate - FRAME / 2) / HOP))
        return slice(first, last)


def track(signal: np.ndarray, sample_rate: int = 16000) -> FrameTrack:
    """Pitch and level of every 10 ms step of `signal` (mono float)."""
    if signal.size < FRAME:
        signal = np.pad(signal, (0, FRAME - signal.size))
    n = 1 + (signal.size - FRAME) // HOP
    index = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    frames = signal[index] * np.hanning(FRAME)[None, :]
    rms = np.sqrt(np.mean(frames**2, axis=1) / 0.375) + 1e-10  # 0.375: Hann window power
    level_db = 20 * np.log10(rms)
    spectrum = np.fft.rfft(frames, n=2 * FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :FRAME]
    # Divide by the overlap length so long lags are not penalised, then by lag 0.
    ac = ac / (FRAME - np.arange(FRAME))[None, :]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(sample_rate / F0_MAX), int(sample_rate / F0_MIN)
    window = ac[:, lo:hi]
    best = np.argmax(window, axis=1)
    peak = window[np.arange(n), best]
    lag = (best + lo).astype(np.float64)
    # Parabolic interpolation around the peak for sub-sample lag precision.
    inner = (best > 0) & (best < window.shape[1] - 1)
    rows = np.nonzero(inner)[0]
    a = window[rows, best[rows] - 1]
    b = window[rows, best[rows]]
    c = window[rows, best[rows] + 1]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    lag[rows] += np.clip(shift, -0.5, 0.5)
    loud = level_db > max(-50.0, float(np.percentile(level_db, 95)) - 30.0)
    voiced = (peak > VOICING_THRESHOLD) & loud
    f0 = np.where(voiced, sample_rate / lag, np.nan)
    return FrameTrack(f0=f0, level_db=level_db, sample_rate=sample_rate)


@dataclass(frozen=True)
class SegmentProsody:
    """Prosodic features of one segment and the arousal/valence read from them."""

    pitch_hz: float | None
    pitch_variability_st: float | None
    energy_db: float
    voiced_fraction: float
    speaking_rate_wps: float | None
    arousal: float
    valence: float


def _word_count(text: str) -> int:
    return sum(1 for w in text.split() if any(ch.isalnum() for ch in w))


def segment_prosody(
    frames: FrameTrack, start: float, end: float, text: str, speaker_median_hz: float | None
) -> SegmentProsody:
    """Features of [start, end] and their arousal/valence (speaker median: for pitch level)."""
    window = frames.frames_between(start, end)
    f0 = frames.f0[window]
    level = frames.level_db[window]
    voiced = f0[~np.isnan(f0)]
    energy_db = float(10 * np.log10(np.mean(10 ** (level / 10)))) if level.size else -100.0
    pitch = float(np.median(voiced)) if voiced.size >= 3 else None
    variability = None
    if pitch is not None:
        variability = float(np.std(12 * np.log2(voiced / pitch)))
    duration = max(end - start, 1e-3)
    words = _word_count(text)
    rate = words / duration if words else None

    z_energy = (energy_db - REF_ENERGY_DB) / ENERGY_SCALE_DB
    z_var = 0.0
    if variability is not None:
        z_var = (variability - REF_VARIABILITY_ST) / VARIABILITY_SCALE_ST
    z_rate = (rate - REF_RATE_WPS) / RATE_SCALE_WPS if rate is not None else 0.0
    z_level = 0.0
    if pitch is not None and speaker_median_hz:
        z_level = 12 * np.log2(pitch / speaker_median_hz) / 3.0
    arousal = float(np.tanh(0.45 * z_energy + 0.3 * z_var + 0.2 * z_rate + 0.3 * z_level))
    # Sad-sounding speech is flat, slow and quiet; lively pitch reads mildly positive.
    valence = float(np.tanh(0.3 * z_var + 0.15 * z_rate + 0.1 * min(z_energy, 0.0)))
    return SegmentProsody(
        pitch_hz=round(pitch, 1) if pitch is not None else None,
        pitch_variability_st=round(variability, 2) if variability is not None else None,
        energy_db=round(energy_db, 1),
        voiced_fraction=round(float(np.mean(~np.isnan(f0))) if f0.size else 0.0, 3),
        speaking_rate_wps=round(rate, 2) if rate is not None else None,
        arousal=round(arousal, 3),
        valence=round(valence, 3),
    )


def median_pitch(frames: FrameTrack, spans: list[tuple[float, float]]) -> float | None:
    """Median F0 over several spans (one speaker's segments), None when nothing is voiced."""
    values = [frames.f0[frames.frames_between(s, e)] for s, e in spans]
    voiced = np.concatenate(values) if values else np.zeros(0)
    voiced = voiced[~np.isnan(voiced)]
    return float(np.median(voiced)) if voiced.size >= 3 else None
