"""The query path of a sentence-transformers BERT encoder, run by ONNX Runtime on the CPU.

A search embeds one short query. In torch's eager mode that costs ~8 ms on one core for
all-MiniLM-L6-v2, most of it per-operator dispatch; the same graph in ONNX Runtime (fused
attention and layer norm) takes ~4 ms with identical vectors (cosine 1.0 to the torch ones,
checked at export). Batches (ingest) stay on torch, which is as fast there and uses every core.

The ONNX file is exported once from the local model into the data directory (no download),
named by a hash of the model's weights, and reused on later starts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("nemo.rag.onnx")

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxExportError(RuntimeError):
    """The model could not be exported or did not reproduce the torch vectors."""


def _weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        path = model_dir / name
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json"}:
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def export(transformer: Any, tokenizer: Any, target: Path) -> None:
    """Write the BERT's ONNX graph (last hidden state) to `target`, atomically."""
    import torch

    class _Hidden(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]

    sample = tokenizer(["an example query for the export"], return_tensors="pt")
    dynamic = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_suffix(f".{os.getpid()}.part")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks the probe re-verifies
            torch.onnx.export(
                _Hidden(transformer.eval()),
                tuple(sample[name] for name in _INPUTS),
                str(partial),
                input_names=list(_INPUTS),
                output_names=["hidden"],
                dynamic_axes={**{name: dynamic for name in _INPUTS}, "hidden": dynamic},
                opset_version=17,
                dynamo=False,
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)  # a failed export leaves nothing behind


class OnnxQueryEncoder:
    """Mean-pooled, L2-normalised embeddings of a few texts through ONNX Runtime."""

    def __init__(self, session: Any, tokenizer: Any, max_tokens: int) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens

    @classmethod
    def build(cls, model: Any, model_dir: Path, cache_dir: Path, threads: int) -> OnnxQueryEncoder:
        """Export (once) and load the encoder of a loaded SentenceTransformer `model`.

        Raises OnnxExportError when the exported graph's vectors differ from torch's.
        """
        import onnxruntime as ort

        transformer = model[0].auto_model
        tokenizer = model.tokenizer
        target = cache_dir / f"{model_dir.name}-{_weights_digest(model_dir)}.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = None
        if target.exists():
            try:
                session = ort.InferenceSession(
                    str(target), options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # a truncated or foreign file: export it again
                log.warning("cached ONNX encoder unreadable (%s); exporting again", exc)
        if session is None:
            log.info("exporting the query encoder to ONNX: %s", target)
            try:
                export(transformer, tokenizer, target)
            except Exception as exc:  # the exporter raises many kinds
                raise OnnxExportError(f"ONNX export failed: {exc}") from exc
            session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        encoder = cls(session, tokenizer, int(model.max_seq_length))
        probe = ["Which long-necked animal protects the safe by the port?", "a"]
        reference = model.encode(
            probe, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        worst = float(np.min(np.sum(encoder.encode(probe) * reference, axis=1)))
        if worst < 0.999:
            target.unlink(missing_ok=True)  # a bad export must not be reused
            raise OnnxExportError(f"ONNX vectors differ from torch (cosine {worst:.4f})")
        return encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_tokens, return_tensors="np"
        )
        feed = {name: batch[name].astype(np.int64) for name in _INPUTS}
        hidden = self._session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled, dtype=np.float32)
