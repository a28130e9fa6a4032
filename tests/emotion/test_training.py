"""The training script end to end on a tiny synthetic split (the real run is done offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemo_server.emotion.engines.minilm_lora import MiniLMLoRAEngine, read_adapter_config
from nemo_server.emotion.training.train import main, read_split

pytestmark = pytest.mark.slow

ROWS = [
    ("I am so happy today", "3"),
    ("what a lovely gift, thank you", "3"),
    ("I hate you, get out", "0"),
    ("this makes me furious", "0"),
    ("the train leaves at ten", "4"),
    ("it is a table", "4"),
    ("I miss my dog so much", "5"),
    ("wow, really? no way", "6,3"),
]


def write_split(folder: Path) -> Path:
    folder.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        lines = [f"{text}\t{labels}\tid{i}" for i, (text, labels) in enumerate(ROWS)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def test_read_split_keeps_multi_labels(tmp_path) -> None:
    texts, labels = read_split(write_split(tmp_path / "data") / "train.tsv")
    assert texts[0] == "I am so happy today" and labels[-1] == [6, 3]


def test_training_writes_loadable_adapters_and_metrics(tmp_path) -> None:
    data = write_split(tmp_path / "data")
    out = tmp_path / "w.safetensors"
    main(
        [
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--frozen-layers",
            "5",
            "--rank",
            "4",
            "--batch",
            "4",
        ]
    )
    config = read_adapter_config(out)
    assert config["frozen_layers"] == 5 and config["rank"] == 4 and len(config["label_bias"]) == 7
    metrics = json.loads(out.with_suffix(".metrics.json").read_text())
    assert metrics["train_rows"] == len(ROWS) and "macro_f1" in metrics["dev_raw"]
    scores = MiniLMLoRAEngine(out).classify(["hello there"])
    assert len(scores[0]) == 7
