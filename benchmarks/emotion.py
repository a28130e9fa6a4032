"""Benchmark: the trained emotion model vs the NRC lexicon baseline on GoEmotions-Ekman dev.

Run: ``.venv/bin/python benchmarks/emotion.py [--data DIR] [--limit N]``. Prints one JSON line:
macro-F1 and accuracy of each engine on the dev split (a prediction counts as right when it is
any of the row's labels), texts per second, the model/lexicon macro-F1 ratio, and the 3-class
sentiment of each sentiment mode (vader, model, blend) on the dev rows whose emotions imply one
polarity (joy: positive; anger, disgust, fear, sadness: negative; neutral: neutral).

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
from nemo_server.emotion.engines.vader import VaderSentiment
from nemo_server.emotion.metrics import evaluate, macro_f1
from nemo_server.emotion.service import THRESHOLDS, sentiment_of
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


POLARITY = {"joy": "positive", "neutral": "neutral"} | dict.fromkeys(
    ("anger", "disgust", "fear", "sadness"), "negative"
)
SENTIMENTS = ("negative", "neutral", "positive")


def sentiment_gold(labels: list[int]) -> str | None:
    """Sentiment implied by a row's emotions; None when mixed or surprise (no clear polarity)."""
    found = {POLARITY.get(LABELS[i]) for i in labels}
    return found.pop() if len(found) == 1 and None not in found else None


def sentiment_scores(texts: list[str], gold: list[list[int]], scores: list[dict]) -> dict:
    """3-class sentiment macro-F1/accuracy of each sentiment mode on rows with a clear polarity."""
    start = time.perf_counter()
    vader = VaderSentiment().polarity(texts)
    vader_rate = len(texts) / (time.perf_counter() - start)
    rows = [i for i, g in enumerate(gold) if sentiment_gold(g) is not None]
    truth = [SENTIMENTS.index(sentiment_gold(gold[i])) for i in rows]
    out: dict = {"rows": len(rows), "vader_texts_per_s": round(vader_rate, 1)}
    for mode in THRESHOLDS:
        predicted = [SENTIMENTS.index(sentiment_of(mode, scores[i], vader[i])[0]) for i in rows]
        out[mode] = {
            "macro_f1": round(macro_f1(predicted, truth, n_classes=3), 4),
            "accuracy": round(
                sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(rows), 4
            ),
        }
    return out


def run(engine, texts: list[str], gold: list[list[int]], batch: int = 64) -> tuple[dict, list]:
    """Scores of one engine: quality on dev and throughput (batches of `batch` texts)."""
    engine.classify(texts[:8])  # warm-up: first-call allocations are not throughput
    start = time.perf_counter()
    scores = []
    for i in range(0, len(texts), batch):
        scores.extend(engine.classify(texts[i : i + batch]))
    seconds = time.perf_counter() - start
    predicted = [LABELS.index(max(s, key=lambda k: s[k])) for s in scores]
    figures = {
        "name": engine.name,
        **evaluate(predicted, gold),
        "texts_per_s": round(len(texts) / seconds, 1),
    }
    return figures, scores


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
    trained, model_scores = run(model, texts, gold)
    lexicon, _ = run(NRCLexiconEngine(), texts, gold)
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
                "sentiment": sentiment_scores(texts, gold, model_scores),
                "threads": args.threads,
                "cpu": platform.processor() or platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
