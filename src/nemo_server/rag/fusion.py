"""Hybrid fusion of dense and lexical rankings.

`rrf`: reciprocal rank fusion, sum of 1/(k + rank) over the two candidate lists.
`zscore`: each retriever's scores standardised over its own candidates, then averaged; a row
missing from one list still has that retriever's true score (both are known for every row).
"""

from __future__ import annotations

import numpy as np


def top_rows(scores: np.ndarray, k: int, positive_only: bool = False) -> np.ndarray:
    """Rows of the k highest scores, best first."""
    rows = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(rows) == 0:
        return rows
    sub = scores[rows]
    if len(rows) > k:
        part = np.argpartition(-sub, k)[:k]
        return rows[part[np.argsort(-sub[part], kind="stable")]]
    return rows[np.argsort(-sub, kind="stable")]


def rrf(dense_rows: np.ndarray, lexical_rows: np.ndarray, k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in (dense_rows, lexical_rows):
        for rank, row in enumerate(ranking.tolist()):
            fused[row] = fused.get(row, 0.0) + 1.0 / (k + rank + 1)
    return fused


def zscore(
    dense_rows: np.ndarray,
    dense_all: np.ndarray,
    lexical_rows: np.ndarray,
    lexical_all: np.ndarray,
    weight: float = 0.5,
) -> dict[int, float]:
    """`dense_all`/`lexical_all`: each retriever's score for every row."""

    def standardise(rows: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
        if len(rows) < 2:
            return 0.0, 1.0
        sample = scores[rows]
        return float(sample.mean()), float(sample.std()) or 1.0

    union = np.union1d(dense_rows, lexical_rows)
    dm, ds = standardise(dense_rows, dense_all)
    lm, ls = standardise(lexical_rows, lexical_all)
    combined = weight * (dense_all[union] - dm) / ds + (1 - weight) * (lexical_all[union] - lm) / ls
    return dict(zip(union.tolist(), combined.tolist(), strict=True))
