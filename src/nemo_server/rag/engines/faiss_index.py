"""The dense vector index: exact (flat) while small, HNSW when large, with checked recall.

Rows are numbered in insertion order; FAISS labels are those row numbers. Deleted rows are
masked (HNSW cannot remove); the owner rebuilds the whole index when too many are dead. Vectors are also
kept in memory so filtered searches can run exactly over the allowed rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("nemo.rag.index")


class DenseIndex:
    """Inner-product search over unit vectors (cosine similarity)."""

    def __init__(
        self,
        dim: int,
        *,
        exact_max: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        min_recall: float = 0.95,
    ) -> None:
        self.dim = dim
        self.exact_max = exact_max
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.min_recall = min_recall
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self.kind = "flat"
        self.recall: float | None = None
        self._faiss: Any = None
        self._pending = 0  # rows appended to `vectors` but not yet to the FAISS index
        self._sync_lock = threading.RLock()

    @property
    def rows(self) -> int:
        return len(self.alive)

    @property
    def live(self) -> int:
        return int(self.alive.sum())

    def add(self, vectors: np.ndarray) -> None:
        """Append rows; the FAISS index catches up lazily on the next search."""
        self.vectors = np.concatenate([self.vectors, vectors.astype(np.float32)])
        self.alive = np.concatenate([self.alive, np.ones(len(vectors), dtype=bool)])
        self._pending += len(vectors)

    def remove(self, rows: list[int]) -> None:
        self.alive[[r for r in rows if r < self.rows]] = False

    def _build(self) -> None:
        import faiss

        if self.live <= self.exact_max:
            # numpy over the matrix is exact and as fast for this size
            self._faiss, self.kind = None, "flat"
        else:
            faiss.omp_set_num_threads(os.cpu_count() or 1)  # building does use every core
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.add(self.vectors)
            self._faiss, self.kind = index, "hnsw"
            self._tune_recall()
        self._pending = 0

    def _sync(self) -> None:
        with self._sync_lock:
            wants_hnsw = self.live > self.exact_max
            if self._faiss is None and not wants_hnsw:
                self.kind, self._pending = "flat", 0
                return
            if self._faiss is None or wants_hnsw != (self.kind == "hnsw"):
                self._build()
            elif self._pending:
                self._faiss.add(self.vectors[self.rows - self._pending :])
                self._pending = 0

    def _tune_recall(self, queries: int = 200, k: int = 10) -> None:
        """Raise efSearch until recall@k against exact search reaches `min_recall`."""
        rng = np.random.default_rng(0)
        live_rows = np.flatnonzero(self.alive)
        pick = rng.choice(live_rows, size=(min(queries, len(live_rows)), 2))
        q = self.vectors[pick[:, 0]] + self.vectors[pick[:, 1]]
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        sims = q @ self.vectors.T
        sims[:, ~self.alive] = -np.inf
        # Tie-aware: a found row counts when it scores at least the k-th exact score.
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1 : k] - 1e-6
        ef = self.ef_search
        while True:
            self._faiss.hnsw.efSearch = ef
            _, found = self._faiss.search(q, k)
            good = np.take_along_axis(sims, np.maximum(found, 0), axis=1) >= kth
            self.recall = float((good & (found >= 0)).sum() / (len(q) * k))
            if self.recall >= self.min_recall or ef >= 1024:
                break
            ef *= 2
        self.ef_search = ef
        log.info(
            "HNSW over %d vectors: recall@%d %.3f at efSearch %d", self.live, k, self.recall, ef
        )

    def search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (rows, scores) among live rows (and `mask` when given), best first."""
        self._sync()
        allowed = self.alive if mask is None else self.alive & mask
        n_allowed = int(allowed.sum())
        if n_allowed == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        q = query.reshape(1, -1).astype(np.float32)
        if self.kind == "hnsw" and n_allowed > 0.1 * self.rows:
            _one_omp_thread()
            fetch = min(self.rows, int(k * self.rows / n_allowed * 1.5) + 10)
            self._faiss.hnsw.efSearch = max(self.ef_search, fetch)
            scores, rows = self._faiss.search(q, fetch)
            keep = (rows[0] >= 0) & allowed[np.maximum(rows[0], 0)]
            if keep.sum() >= min(k, n_allowed):
                return rows[0][keep][:k].astype(np.int64), scores[0][keep][:k]
        if n_allowed > self.rows // 2:  # one pass over the matrix beats copying most of it
            sims = self.vectors @ q[0]
            sims[~allowed] = -np.inf
            top = _top(sims, min(k, n_allowed))
            return top.astype(np.int64), sims[top]
        candidates = np.flatnonzero(allowed)
        sims = self.vectors[candidates] @ q[0]
        top = _top(sims, k)
        return candidates[top], sims[top]

    def save(self, folder: Path, extra: dict[str, Any]) -> None:
        """Write the FAISS graph (the part costly to rebuild) and a manifest."""
        import faiss

        self._sync()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._faiss is not None:
            faiss.write_index(self._faiss, str(folder / "dense.faiss.tmp"))
            (folder / "dense.faiss.tmp").replace(folder / "dense.faiss")
        manifest = {
            "kind": self.kind,
            "rows": self.rows,
            "ef_search": self.ef_search,
            "recall": self.recall,
            **extra,
        }
        (folder / "manifest.tmp").write_text(json.dumps(manifest))
        (folder / "manifest.tmp").replace(folder / "manifest.json")

    def load_graph(self, folder: Path, manifest: dict[str, Any]) -> bool:
        """Adopt a saved HNSW graph when it matches the rows in memory; False otherwise."""
        import faiss

        path = folder / "dense.faiss"
        if manifest.get("kind") != "hnsw" or not path.exists():
            return False
        index = faiss.read_index(str(path))
        if index.ntotal > self.rows or index.d != self.dim:
            return False
        self._faiss, self.kind = index, "hnsw"
        self.ef_search = int(manifest.get("ef_search", self.ef_search))
        self.recall = manifest.get("recall")
        self._pending = self.rows - index.ntotal
        return True


_controller: Any = None


def _one_omp_thread() -> None:
    """One query gains nothing from OpenMP threads; the setting is per calling thread."""
    import faiss

    faiss.omp_set_num_threads(1)


def single_thread_blas() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for a query's small matrix products.

    A matrix-vector product is memory-bound; several BLAS threads only spin and wait for
    each other, which on a busy machine makes a 3 ms product take 10-20 ms.
    """
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - it comes with scikit-learn
            return contextlib.nullcontext()
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]
