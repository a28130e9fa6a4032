"""Diarization with a pyannote.audio pipeline loaded from a local directory.

pyannote's own weights sit on a gated hub, so nothing is bundled: a user points
`NEMO_TRANSCRIPTION_PYANNOTE_PATH` at a directory holding the pipeline's `config.yaml` (whose
model entries are local paths) and the checkpoints it names. `pyannote.audio` itself is an
optional dependency, imported only when this engine is built.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from nemo_server.transcription.engines.base import SpeakerBounds, Turn


class PyannoteUnavailable(RuntimeError):
    """The pipeline cannot be loaded (package missing, path wrong, config invalid)."""


def check_pipeline_dir(path: Path | None) -> Path:
    """The pipeline's `config.yaml`, after checking the directory is usable offline."""
    if path is None:
        raise PyannoteUnavailable(
            "diarizer 'pyannote' needs NEMO_TRANSCRIPTION_PYANNOTE_PATH (a local pipeline directory)"
        )
    config = path / "config.yaml" if path.is_dir() else path
    if not config.is_file():
        raise PyannoteUnavailable(f"no pyannote pipeline config at {config}")
    import yaml

    try:
        spec = yaml.safe_load(config.read_text())
    except yaml.YAMLError as exc:
        raise PyannoteUnavailable(f"{config} is not valid YAML: {exc}") from None
    if (
        not isinstance(spec, dict)
        or "pipeline" not in spec
        or "name" not in (spec["pipeline"] or {})
    ):
        raise PyannoteUnavailable(f"{config} has no 'pipeline.name' entry")
    # Hub ids inside the config would make pyannote reach the network: demand local files.
    for key, value in (spec["pipeline"].get("params") or {}).items():
        if key in ("segmentation", "embedding") and isinstance(value, str):
            local = (config.parent / value) if not Path(value).is_absolute() else Path(value)
            if not local.exists():
                raise PyannoteUnavailable(
                    f"{config}: pipeline.params.{key} = {value!r} is not a local file"
                )
    return config


class PyannoteDiarizer:
    """A pyannote `Pipeline` read from `config.yaml` in a local directory."""

    name = "pyannote"

    def __init__(self, path: Path | None, device: str = "cpu") -> None:
        config = check_pipeline_dir(path)
        try:
            from pyannote.audio import Pipeline
        except ImportError as exc:
            raise PyannoteUnavailable(
                f"diarizer 'pyannote' needs the optional package pyannote.audio ({exc})"
            ) from None
        self._pipeline: Any = Pipeline.from_pretrained(config)
        if device == "cuda":
            import torch

            self._pipeline.to(torch.device("cuda"))
        self._lock = threading.Lock()

    def diarize(self, audio: np.ndarray, bounds: SpeakerBounds) -> list[Turn]:
        import torch

        kwargs: dict[str, int] = {}
        if bounds.num is not None:
            kwargs["num_speakers"] = bounds.num
        else:
            kwargs["min_speakers"], kwargs["max_speakers"] = bounds.min, bounds.max
        waveform = torch.from_numpy(audio.astype(np.float32)).unsqueeze(0)
        with self._lock:
            output = self._pipeline({"waveform": waveform, "sample_rate": 16_000}, **kwargs)
        annotation = getattr(output, "speaker_diarization", output)
        names: dict[str, str] = {}
        turns = []
        for segment, _, label in annotation.itertracks(yield_label=True):
            speaker = names.setdefault(label, f"SPEAKER_{len(names):02d}")
            turns.append(Turn(float(segment.start), float(segment.end), speaker))
        return sorted(turns, key=lambda t: (t.start, t.speaker))
