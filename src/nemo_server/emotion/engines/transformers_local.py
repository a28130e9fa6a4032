"""A transformer sequence classifier loaded from a local directory (no hub access).

For example a DistilRoBERTa emotion model the user already has on disk. Its `id2label` names
must be Ekman labels (case-insensitive); labels the model lacks score 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nemo_server.emotion.engines.base import LABELS


class TransformersEngine:
    """`AutoModelForSequenceClassification` + its tokenizer, softmax over the model's labels."""

    def __init__(self, path: Path, *, threads: int = 0, max_length: int = 128) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a model directory (no config.json)")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModelForSequenceClassification.from_pretrained(
            str(path), local_files_only=True
        ).eval()
        id2label = self._model.config.id2label
        names = [str(id2label[i]).lower() for i in range(len(id2label))]
        unknown = sorted(set(names) - set(LABELS))
        if unknown:
            raise ValueError(f"model labels {unknown} are not Ekman emotions ({', '.join(LABELS)})")
        self._names = names
        self._multi_label = self._model.config.problem_type == "multi_label_classification"
        self._max_length = max_length
        self.name = f"transformers/{path.name}"

    def classify(self, texts: Sequence[str], batch_size: int = 32) -> list[dict[str, float]]:
        torch = self._torch
        out: list[dict[str, float]] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                enc = self._tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                )
                logits = self._model(**enc).logits
                probs = torch.sigmoid(logits) if self._multi_label else logits.softmax(-1)
                for row in probs.tolist():
                    scores = dict.fromkeys(LABELS, 0.0)
                    for name, p in zip(self._names, row, strict=True):
                        scores[name] += float(p)
                    total = sum(scores.values()) or 1.0
                    out.append({k: v / total for k, v in scores.items()})
        return out

    def info(self) -> dict | None:
        return {"labels": self._names, "architecture": self._model.config.model_type}
