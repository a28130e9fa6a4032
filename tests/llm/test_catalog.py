"""Which models exist: bundled ones (Gemma written once into the data dir), a models dir, paths."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nemo_server.common.errors import NotFound
from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.engines.base import EngineOptions, GenerationRequest, SamplingParams
from nemo_server.llm.engines.llama_cpp import LlamaCppModel
from nemo_server.llm.settings import LlmSettings


def test_models_dir_and_named_paths(settings: LlmSettings, tmp_path: Path) -> None:
    settings.model_paths = {"mine": tmp_path / "absent.gguf"}
    catalog = ModelCatalog(settings)
    specs = catalog.specs()
    assert specs["tiny-local"].source == "models_dir"
    assert specs["smollm2"].source == "bundled" and specs["smollm2"].path.is_file()
    assert catalog.resolve(None).name == "smollm2"  # the default model
    assert catalog.resolve("default").name == "smollm2"
    with pytest.raises(NotFound, match="missing"):
        catalog.resolve("mine")
    with pytest.raises(NotFound, match="does not exist"):
        catalog.resolve("llama-9000")


@pytest.mark.slow
def test_gemma_is_written_once_into_the_data_dir_and_completes(settings: LlmSettings) -> None:
    catalog = ModelCatalog(settings)
    spec = catalog.resolve("gemma3-270m")
    assert spec.path.parent == settings.common.data_dir / "models" and spec.path.is_file()
    written = spec.path.stat().st_mtime_ns
    assert catalog.resolve("gemma3-270m").path.stat().st_mtime_ns == written
    assert not list(spec.path.parent.glob("*.partial-*"))

    model = LlamaCppModel(spec, EngineOptions(n_slots=1, ctx_per_slot=256, n_threads=1))
    try:
        request = GenerationRequest(
            model.tokenize("The capital of France is"),
            max_tokens=4,
            sampling=SamplingParams(temperature=0),
        )

        async def run() -> str:
            return "".join([c.text async for c in model.generate(request)])

        assert asyncio.run(run()).strip()
    finally:
        model.close()
