"""Frame-level speech detection with WebRTC VAD (cheap; used by diarization and live streams)."""

from __future__ import annotations

import numpy as np

FRAME_S = 0.01  # the frame grid every speech mask in this package uses
_VAD_FRAME = 480  # 30 ms at 16 kHz, one of the sizes WebRTC VAD accepts


def to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


class SpeechDetector:
    """Tells speech from silence in 30 ms frames; the result is expanded to 10 ms frames."""

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: np.ndarray) -> bool:
        """One 30 ms frame (480 float32 samples) is speech."""
        return bool(self._vad.is_speech(to_int16(frame).tobytes(), 16_000))

    def mask(self, audio: np.ndarray) -> np.ndarray:
        """A boolean per 10 ms frame of `audio`."""
        n_frames = len(audio) // 160
        mask = np.zeros(n_frames, dtype=bool)
        pcm = to_int16(audio)
        # WebRTC VAD also fires on loud noise; an energy floor removes digital silence cheaply.
        for i in range(0, len(pcm) - _VAD_FRAME + 1, _VAD_FRAME):
            chunk = pcm[i : i + _VAD_FRAME]
            if np.abs(chunk).max() < 60:
                continue
            if self._vad.is_speech(chunk.tobytes(), 16_000):
                mask[i // 160 : i // 160 + 3] = True
        return mask
