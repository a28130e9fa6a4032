"""CPU repack: a bundled model is served from a Q4_0 copy made once in the data dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.testing import ADMIN, internal_headers
from nemo_server.llm.app import create_app
from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.engines import llama_cpp as engine
from nemo_server.llm.engines.base import EngineOptions, ModelSpec
from nemo_server.llm.engines.repack import ensure_repacked
from nemo_server.llm.settings import LlmSettings


def _copies(settings: LlmSettings) -> Path:
    return settings.common.data_dir / "models" / "cpu-repack"


@pytest.mark.slow
def test_bundled_model_is_served_from_a_copy_made_once(
    settings: LlmSettings, alice: dict[str, str]
) -> None:
    settings.parallel_slots, settings.context_per_slot, settings.threads = 1, 256, 1
    bundled = ModelCatalog(settings).lookup("smollm2").path
    package_file = (bundled.stat().st_size, bundled.stat().st_mtime_ns)
    admin = internal_headers(settings.common, ADMIN)
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 4,
        "temperature": 0,
    }
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/chat/completions", json=body, headers=alice)
        assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"]
        served = Path(client.get("/v1/llm/status", headers=admin).json()["loaded"][0]["file"])
        assert served.parent == _copies(settings) and served.name.endswith(".q4_0.gguf")
        written = served.stat().st_mtime_ns
        assert sorted(p.suffix for p in _copies(settings).iterdir()) == [".gguf", ".json"]

        # Unloaded and loaded again: the same copy is used, not written again.
        client.post("/v1/llm/models/smollm2/unload", headers=admin)
        again = client.post("/v1/chat/completions", json=body, headers=alice)
        assert again.json()["choices"][0]["message"] == first.json()["choices"][0]["message"]
        assert served.stat().st_mtime_ns == written
    assert (bundled.stat().st_size, bundled.stat().st_mtime_ns) == package_file


@pytest.mark.slow
def test_a_damaged_copy_is_made_again(tmp_path: Path) -> None:
    bundled = ModelCatalog(LlmSettings()).lookup("smollm2").path
    lib = engine._init_backend()
    copy = ensure_repacked(bundled, "q4_0", tmp_path, lib)
    size = copy.stat().st_size
    assert 0 < size < bundled.stat().st_size  # every matrix 4-bit, embedding included
    assert ensure_repacked(bundled, "q4_0", tmp_path, lib) == copy
    with copy.open("r+b") as f:  # same size, other bytes: only the hash can tell
        f.seek(size // 2)
        f.write(b"\0" * 64)
    ensure_repacked(bundled, "q4_0", tmp_path, lib)
    with copy.open("rb") as f:
        f.seek(size // 2)
        assert f.read(64) != b"\0" * 64
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


@dataclass
class _Recorded:
    spec: ModelSpec
    options: EngineOptions


@pytest.mark.parametrize(
    ("gpu", "kind", "marked"), [(True, "q4_0", True), (False, "none", True), (False, "q4_0", False)]
)
def test_no_copy_on_a_gpu_when_off_or_for_other_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gpu: bool, kind: str, marked: bool
) -> None:
    monkeypatch.setattr(engine, "LlamaCppModel", _Recorded)  # records what would be loaded
    spec = ModelSpec("smollm2", tmp_path / "model.Q4_1.gguf", "bundled", cpu_repack=marked)
    options = EngineOptions(gpu=gpu, cpu_repack=kind, repack_dir=tmp_path / "copies")
    loaded = engine.build(spec, options)
    assert loaded.spec == spec
    assert not (tmp_path / "copies").exists()


def test_only_smollm2_is_marked_for_the_copy(settings: LlmSettings) -> None:
    specs = ModelCatalog(settings).specs()
    assert specs["smollm2"].cpu_repack and not specs["tiny-local"].cpu_repack
    assert "gemma3-270m" not in specs or not specs["gemma3-270m"].cpu_repack


def test_the_setting_reaches_the_engine(settings: LlmSettings) -> None:
    from nemo_server.llm.engines import ENGINES
    from nemo_server.llm.lifecycle import ModelManager

    manager = ModelManager(settings, ModelCatalog(settings), ENGINES["fake"])
    assert manager.options().cpu_repack == "q4_0"  # the default
    assert manager.options().repack_dir == _copies(settings)
    settings.cpu_repack = "none"
    assert manager.options().cpu_repack == "none"
    with pytest.raises(ValueError, match="cpu_repack"):
        LlmSettings(common=settings.common, cpu_repack="q2_k")  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_bundled_file_is_served_when_no_copy_can_be_written(tmp_path: Path) -> None:
    from nemo_server.llm.engines.repack import for_cpu

    spec = ModelCatalog(LlmSettings()).lookup("smollm2")
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the copies' directory should be")
    assert for_cpu(spec, "q4_0", blocked, engine._init_backend()) == spec
