"""Diarization error rate without a forgiveness collar, overlapped speech scored (NIST style).

Time is cut into 10 ms frames. In each frame with reference speakers R and hypothesis
speakers H (after the best one-to-one mapping of labels): missed = max(0, |R| - |H|),
false alarm = max(0, |H| - |R|), confusion = min(|R|, |H|) - |R ∩ H|. DER is their sum over
the total reference speaker time (overlapped frames count once per speaker).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Span = tuple[float, float, str]
_STEP = 0.01


@dataclass(frozen=True)
class DerResult:
    der: float
    missed: float
    false_alarm: float
    confusion: float
    reference_s: float


def _matrix(spans: list[Span], labels: list[str], n: int) -> np.ndarray:
    out = np.zeros((len(labels), n), dtype=bool)
    index = {label: i for i, label in enumerate(labels)}
    for start, end, label in spans:
        out[index[label], round(start / _STEP) : round(end / _STEP)] = True
    return out


def diarization_error(reference: list[Span], hypothesis: list[Span]) -> DerResult:
    """Score `hypothesis` against `reference` (lists of (start, end, speaker))."""
    from scipy.optimize import linear_sum_assignment

    end = max([e for _, e, _ in reference + hypothesis] or [0.0])
    n = round(end / _STEP) + 1
    ref_labels = sorted({s for _, _, s in reference})
    hyp_labels = sorted({s for _, _, s in hypothesis})
    ref = _matrix(reference, ref_labels, n)
    hyp = _matrix(hypothesis, hyp_labels, n)
    mapped = np.zeros_like(ref)
    if ref_labels and hyp_labels:
        shared = ref.astype(np.int32) @ hyp.T.astype(np.int32)
        rows, cols = linear_sum_assignment(-shared)
        for r, c in zip(rows, cols, strict=True):
            mapped[r] = hyp[c]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    correct = (ref & mapped).sum(axis=0)
    missed = np.maximum(0, n_ref - n_hyp).sum() * _STEP
    false_alarm = np.maximum(0, n_hyp - n_ref).sum() * _STEP
    confusion = (np.minimum(n_ref, n_hyp) - correct).sum() * _STEP
    total = n_ref.sum() * _STEP
    der = (missed + false_alarm + confusion) / total if total else 0.0
    return DerResult(float(der), float(missed), float(false_alarm), float(confusion), float(total))


def parse_rttm(text: str) -> list[Span]:
    spans = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            spans.append((start, start + duration, parts[7]))
    return spans
