"""The pyannote engine's loading code (pyannote.audio itself is optional and not installed here:
it needs torchaudio/torchcodec builds matching torch, which cannot be installed offline without
pulling another torch). Its configuration checks and error paths are tested instead."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nemo_server.transcription.engines.pyannote_diarizer import (
    PyannoteDiarizer,
    PyannoteUnavailable,
    check_pipeline_dir,
)
from tests.transcription.conftest import tone_wav

CONFIG = """\
version: 3.1.0
pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    segmentation: segmentation.bin
    embedding: embedding.bin
    clustering: AgglomerativeClustering
params:
  clustering:
    method: centroid
    threshold: 0.7
"""


def build_pipeline_dir(root: Path, config: str = CONFIG, weights: bool = True) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(config)
    if weights:
        (root / "segmentation.bin").write_bytes(b"\0" * 16)
        (root / "embedding.bin").write_bytes(b"\0" * 16)
    return root


def test_a_local_pipeline_directory_is_accepted(tmp_path):
    root = build_pipeline_dir(tmp_path / "pipe")
    assert check_pipeline_dir(root) == root / "config.yaml"
    assert check_pipeline_dir(root / "config.yaml") == root / "config.yaml"


@pytest.mark.parametrize(
    ("config", "weights", "message"),
    [
        (CONFIG, False, "not a local file"),
        (CONFIG.replace("segmentation.bin", "pyannote/segmentation-3.0"), True, "not a local file"),
        ("pipeline: [unclosed", True, "not valid YAML"),
        ("version: 3\n", True, "pipeline.name"),
    ],
)
def test_bad_pipeline_directories_are_explained(tmp_path, config, weights, message):
    root = build_pipeline_dir(tmp_path / "pipe", config, weights)
    with pytest.raises(PyannoteUnavailable, match=message):
        check_pipeline_dir(root)


def test_missing_path_and_missing_config(tmp_path):
    with pytest.raises(PyannoteUnavailable, match="PYANNOTE_PATH"):
        check_pipeline_dir(None)
    with pytest.raises(PyannoteUnavailable, match="no pyannote pipeline config"):
        check_pipeline_dir(tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("pyannote") is not None, reason="pyannote.audio is installed"
)
def test_without_pyannote_audio_the_engine_says_what_is_missing(tmp_path):
    root = build_pipeline_dir(tmp_path / "pipe")
    with pytest.raises(PyannoteUnavailable, match=r"pyannote\.audio"):
        PyannoteDiarizer(root)


def test_service_configured_for_pyannote_answers_503_on_diarize(settings, headers, tmp_path):
    from fastapi.testclient import TestClient

    from nemo_server.transcription.app import create_app
    from nemo_server.transcription.engines.fake import FakeAsr

    configured = settings.model_copy(update={"diarizer": "pyannote", "pyannote_path": tmp_path})
    with TestClient(create_app(configured, asr_engine=FakeAsr())) as client:
        files = {"file": ("a.wav", tone_wav([0.2, 0.3]), "audio/wav")}
        plain = client.post("/v1/audio/transcriptions", headers=headers, files=files)
        assert plain.status_code == 200
        diarized = client.post(
            "/v1/audio/transcriptions", headers=headers, files=files, data={"diarize": "true"}
        )
        assert diarized.status_code == 503
        assert "pyannote" in diarized.json()["error"]["message"]
