"""Okapi BM25 over scipy sparse matrices, built in segments so ingest never re-indexes all.

Each ingest adds a segment (a CSC term-frequency matrix over that batch's chunks). Document
frequencies and lengths are global, so scores equal those of one big index. Deleted rows are
masked and their terms leave the statistics; segments are merged when they pile up.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being "
    "below between both but by can could did do does doing down during each few for from further "
    "had has have having he her here hers herself him himself his how i if in into is it its itself "
    "just me more most my myself no nor not now of off on once only or other our ours ourselves out "
    "over own same she should so some such than that the their theirs them themselves then there "
    "these they this those through to too under until up very was we were what when where which "
    "while who whom why will with would you your yours yourself yourselves".split()
)


def stem(word: str) -> str:
    """A light English suffix stripper (plurals, -ing, -ed, -ly, -ation...)."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, repl in (
        ("ational", "ate"),
        ("ization", "ize"),
        ("fulness", "ful"),
        ("iveness", "ive"),
        ("ations", "ate"),
        ("ation", "ate"),
        ("ities", "ity"),
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("ly", ""),
        ("es", "e"),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suffix)] + repl
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop words dropped, lightly stemmed terms."""
    return [stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


@dataclass
class _Segment:
    offset: int  # global row of its first row
    matrix: Any  # scipy.sparse.csc_matrix, rows x width (vocabulary size when built)
    rows_view: Any = None  # the same as CSR, made on the first deletion (row access is cheap)

    def terms_of(self, row: int) -> np.ndarray:
        if self.rows_view is None:
            self.rows_view = self.matrix.tocsr()
        start, end = self.rows_view.indptr[row], self.rows_view.indptr[row + 1]
        return self.rows_view.indices[start:end]


class Bm25Index:
    """BM25 over rows identified by their global position (0, 1, 2... in insertion order)."""

    MAX_SEGMENTS = 12

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.vocab: dict[str, int] = {}
        self._df = np.zeros(1024, dtype=np.int64)
        self._lengths = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._segments: list[_Segment] = []
        self._total_len = 0.0
        self._norm: np.ndarray | None = None  # per-row length normalisation, cached

    @property
    def rows(self) -> int:
        return len(self._lengths)

    @property
    def live(self) -> int:
        return int(self._alive.sum())

    def add(self, texts: list[str]) -> None:
        """Append rows (one per text) at the end."""
        from scipy import sparse

        if not texts:
            return
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(texts), dtype=np.float64)
        for r, text in enumerate(texts):
            counts = Counter(tokenize(text))
            lengths[r] = sum(counts.values())
            for term, tf in counts.items():
                col = self.vocab.setdefault(term, len(self.vocab))
                rows.append(r)
                cols.append(col)
                vals.append(tf)
        width = len(self.vocab)
        if width > len(self._df):
            self._df = np.concatenate([self._df, np.zeros(max(width, len(self._df)), np.int64)])
        col_arr = np.asarray(cols, dtype=np.int64)
        np.add.at(self._df, col_arr, 1)
        matrix = sparse.csc_matrix(
            (np.asarray(vals, dtype=np.float32), (np.asarray(rows, dtype=np.int64), col_arr)),
            shape=(len(texts), width),
        )
        self._segments.append(_Segment(self.rows, matrix))
        self._lengths = np.concatenate([self._lengths, lengths])
        self._alive = np.concatenate([self._alive, np.ones(len(texts), dtype=bool)])
        self._total_len += float(lengths.sum())
        self._norm = None
        if len(self._segments) > self.MAX_SEGMENTS:
            self._merge()

    def remove(self, rows: list[int]) -> None:
        """Mask rows and take their terms out of the statistics."""
        for row in rows:
            if row >= self.rows or not self._alive[row]:
                continue
            self._alive[row] = False
            self._total_len -= self._lengths[row]
            seg = next(s for s in reversed(self._segments) if s.offset <= row)
            terms = seg.terms_of(row - seg.offset)
            self._df[terms] -= 1
        self._norm = None

    def _merge(self) -> None:
        from scipy import sparse

        width = len(self.vocab)
        mats = [
            sparse.csc_matrix(
                (
                    s.matrix.data,
                    s.matrix.indices,
                    np.concatenate(
                        [s.matrix.indptr, np.full(width - s.matrix.shape[1], s.matrix.indptr[-1])]
                    ),
                ),
                shape=(s.matrix.shape[0], width),
            )
            for s in self._segments
        ]
        self._segments = [_Segment(0, sparse.vstack(mats, format="csc"))]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (0 for rows without its terms or deleted)."""
        n_rows = self.rows
        out = np.zeros(n_rows, dtype=np.float64)
        live = self.live
        if live == 0:
            return out
        counts = Counter(t for t in tokenize(query) if t in self.vocab)
        if not counts:
            return out
        term_ids = np.fromiter((self.vocab[t] for t in counts), dtype=np.int64)
        weights = np.fromiter(counts.values(), dtype=np.float64)
        df = self._df[term_ids].astype(np.float64)
        idf = np.log1p((live - df + 0.5) / (df + 0.5)) * weights
        if self._norm is None:
            avgdl = max(self._total_len / live, 1e-9)
            self._norm = self.k1 * (1 - self.b + self.b * self._lengths / avgdl)
        norm = self._norm
        for seg in self._segments:
            inside = term_ids < seg.matrix.shape[1]
            if not inside.any():
                continue
            sub = seg.matrix[:, term_ids[inside]].tocoo()
            rows = sub.row + seg.offset
            tf = sub.data.astype(np.float64)
            contrib = idf[inside][sub.col] * tf * (self.k1 + 1) / (tf + norm[rows])
            out += np.bincount(rows, weights=contrib, minlength=n_rows)
        out[~self._alive] = 0.0
        return out
