"""Engines: ASR and diarization behind protocols, built by name from a registry.

Heavy libraries (faster-whisper, torch, resemblyzer, pyannote) are imported only inside the
builders, so importing this package costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nemo_server.transcription.engines.base import (
    AsrEngine,
    AsrOptions,
    AsrResult,
    DiarizationEngine,
    Segment,
    SpeakerBounds,
    SpeakerEmbedder,
    Turn,
    Word,
)
from nemo_server.transcription.settings import BUNDLED_MODEL, TranscriptionSettings

__all__ = [
    "DIARIZERS",
    "AsrEngine",
    "AsrOptions",
    "AsrResult",
    "DiarizationEngine",
    "Segment",
    "SpeakerBounds",
    "SpeakerEmbedder",
    "Turn",
    "Word",
    "build_asr",
    "build_diarizer",
    "model_paths",
]


def model_paths(settings: TranscriptionSettings) -> dict[str, Path | None]:
    """Every model a request may name; None stands for the bundled tiny.en (resolved lazily)."""
    paths: dict[str, Path | None] = {BUNDLED_MODEL: None}
    paths.update({name: Path(p).expanduser() for name, p in settings.models.items()})
    return paths


def build_asr(name: str, path: Path | None, settings: TranscriptionSettings) -> AsrEngine:
    """Load one CTranslate2 Whisper model (the bundled one when `path` is None)."""
    from nemo_server.transcription.engines.whisper import (
        FasterWhisperEngine,
        bundled_model_path,
        resolve_device,
    )

    return FasterWhisperEngine(
        name,
        path or bundled_model_path(),
        device=resolve_device(settings.device),
        compute_type=settings.compute_type,
        cpu_threads=settings.cpu_threads,
    )


def _resemblyzer(settings: TranscriptionSettings) -> DiarizationEngine:
    from nemo_server.transcription.engines.resemblyzer_diarizer import ResemblyzerDiarizer

    return ResemblyzerDiarizer("cpu")


def _pyannote(settings: TranscriptionSettings) -> DiarizationEngine:
    from nemo_server.transcription.engines.pyannote_diarizer import PyannoteDiarizer
    from nemo_server.transcription.engines.whisper import resolve_device

    return PyannoteDiarizer(settings.pyannote_path, device=resolve_device(settings.device))


DIARIZERS: dict[str, Callable[[TranscriptionSettings], DiarizationEngine]] = {
    "resemblyzer": _resemblyzer,
    "pyannote": _pyannote,
}


def build_diarizer(settings: TranscriptionSettings) -> DiarizationEngine:
    return DIARIZERS[settings.diarizer](settings)


def build_embedder() -> SpeakerEmbedder:
    """The voice encoder live streams label speakers with."""
    from nemo_server.transcription.engines.resemblyzer_diarizer import ResemblyzerDiarizer

    return ResemblyzerDiarizer("cpu")
