"""Benchmark: the trained emotion model vs the NRC lexicon baseline on GoEmotions-Ekman dev.

Run: ``.venv/bin/python benchmarks/emotion.py [--data DIR] [--limit N]``. Prints one JSON line:
macro-F1 and accuracy of each engine on the dev split (a prediction counts as right when it is
any of the row's labels), texts per second, and the model/lexicon macro-F1 ratio.

Note: dev was used to pick the training epoch and the per-class offsets, so the model's dev
figure is optimistic; the model card's cross-fitted figure (`dev_offsets_cross_fitted`) is the
honest estimate, and the project's own held-out test split is not on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from nemo_server.emotion.engines.base import LABELS
from nemo_server.emotion.engines.lexicon import NRCLexiconEngine
from nemo_server.emotion.engines.minilm_lora import MiniLMLoRAEngine
from nemo_server.emotion.metrics import evaluate
from nemo_server.emotion.training.train import read_split

ROOT = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    """`../shared/data/goemotions-ekman` beside the clone (CI), else /work/shared."""
    for candidate in (
        ROOT.parent / "shared/data/goemotions-ekman",
        Path("/work/shared/data/goemotions-ekman"),
    ):
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared/data/goemotions-ekman"


def run(engine, texts: list[str], gold: list[list[int]], batch: int = 64) -> dict:
    """Scores of one engine: quality on dev and throughput (batches of `batch` texts)."""
    engine.classify(texts[:8])  # warm-up: first-call allocations are not throughput
    start = time.perf_counter()
    scores = []
    for i in range(0, len(texts), batch):
        scores.extend(engine.classify(texts[i : i + batch]))
    seconds = time.perf_counter() - start
    predicted = [LABELS.index(max(s, key=lambda k: s[k])) for s in scores]
    return {
        "name": engine.name,
        **evaluate(predicted, gold),
        "texts_per_s": round(len(texts) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--limit", type=int, default=None, help="first N dev rows only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--weights", type=Path, default=None, help="adapter file (default: shipped)"
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    texts, gold = read_split(args.data / "dev.tsv", args.limit)
    model = MiniLMLoRAEngine(args.weights)
    trained = run(model, texts, gold)
    lexicon = run(NRCLexiconEngine(), texts, gold)
    card = (model.info() or {}).get("metrics") or {}
    print(
        json.dumps(
            {
                "benchmark": "emotion-text",
                "split": "dev",
                "rows": len(texts),
                "model": trained,
                "baseline_nrc_lexicon": lexicon,
                "macro_f1_ratio": round(trained["macro_f1"] / max(lexicon["macro_f1"], 1e-9), 2),
                "model_dev_cross_fitted": card.get("dev_offsets_cross_fitted"),
                "threads": args.threads,
                "cpu": platform.processor() or platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
