"""Per-user in-memory indexes (dense + BM25 + filter columns), loaded from disk and the DB.

Each user has separate indexes, so a search can only ever see that user's chunks. The DB is the
truth: a per-user generation number says when the cached index is stale (another replica wrote).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nemo_server.rag import fusion
from nemo_server.rag.bm25 import Bm25Index
from nemo_server.rag.engines.faiss_index import DenseIndex, single_thread_blas
from nemo_server.rag.settings import RagSettings
from nemo_server.rag.store import IndexRow, RagStore

log = logging.getLogger("nemo.rag.memory")


@dataclass(frozen=True)
class Filters:
    """Search filters; None means no constraint."""

    collection: str | None = None
    source: str | None = None
    speaker: str | None = None
    document_id: str | None = None
    date_from: float | None = None
    date_to: float | None = None

    def empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.collection,
                self.source,
                self.speaker,
                self.document_id,
                self.date_from,
                self.date_to,
            )
        )


@dataclass
class Hit:
    chunk_id: int
    score: float
    dense: float
    lexical: float


class UserMemory:
    """One user's searchable chunks."""

    def __init__(self, settings: RagSettings, dim: int, generation: int = 0) -> None:
        self.settings = settings
        self.generation = generation
        self.dense = DenseIndex(
            dim,
            exact_max=settings.exact_index_max,
            hnsw_m=settings.hnsw_m,
            ef_construction=settings.hnsw_ef_construction,
            ef_search=settings.hnsw_ef_search,
            min_recall=settings.min_recall,
        )
        self.bm25 = Bm25Index(settings.bm25_k1, settings.bm25_b)
        self.chunk_ids: list[int] = []
        self.row_of: dict[int, int] = {}
        self.doc_ids: list[str] = []
        self.collections: list[str] = []
        self.sources: list[str] = []
        self.dates: list[float] = []
        self.speakers: list[tuple[str, ...]] = []
        self.lock = threading.RLock()
        self.dirty = False

    def add(self, rows: list[IndexRow]) -> None:
        with self.lock:
            rows = [r for r in rows if r.chunk_id not in self.row_of]
            if not rows:
                return
            for r in rows:
                self.row_of[r.chunk_id] = len(self.chunk_ids)
                self.chunk_ids.append(r.chunk_id)
                self.doc_ids.append(r.document_id)
                self.collections.append(r.collection)
                self.sources.append(r.source)
                self.dates.append(r.date_ts)
                self.speakers.append(r.speakers)
            self.dense.add(np.stack([r.vector for r in rows]))
            self.bm25.add([r.text for r in rows])
            self.dirty = True

    def remove(self, chunk_ids: list[int]) -> None:
        with self.lock:
            rows = [self.row_of.pop(c) for c in chunk_ids if c in self.row_of]
            self.dense.remove(rows)
            self.bm25.remove(rows)
            self.dirty = True

    @property
    def live(self) -> int:
        return self.dense.live

    @property
    def too_sparse(self) -> bool:
        """More than a fifth of the rows are deleted ones: time to rebuild compactly."""
        rows = self.dense.rows
        return rows >= 100 and rows - self.live > 0.2 * rows

    def mask(self, f: Filters) -> np.ndarray | None:
        if f.empty():
            return None
        mask = np.ones(len(self.chunk_ids), dtype=bool)
        for values, wanted in (
            (self.collections, f.collection),
            (self.sources, f.source),
            (self.doc_ids, f.document_id),
        ):
            if wanted is not None:
                mask &= np.fromiter((v == wanted for v in values), bool, len(values))
        if f.speaker is not None:
            who = f.speaker.casefold()
            mask &= np.fromiter(
                (any(s.casefold() == who for s in sp) for sp in self.speakers),
                bool,
                len(self.speakers),
            )
        if f.date_from is not None or f.date_to is not None:
            dates = np.asarray(self.dates)
            mask &= (dates >= (f.date_from if f.date_from is not None else -math.inf)) & (
                dates <= (f.date_to if f.date_to is not None else math.inf)
            )
        return mask

    def search(
        self, query_vec: np.ndarray | None, query: str, k: int, mode: str, filters: Filters
    ) -> list[Hit]:
        """Best `k` hits by `mode` (`hybrid`, `dense` or `lexical`)."""
        s = self.settings
        with self.lock, single_thread_blas():
            if not self.chunk_ids or self.live == 0:
                return []
            mask = self.mask(filters)
            n = max(s.candidates, k)
            lexical_all = self.bm25.scores(query) if mode != "dense" else None
            if lexical_all is not None and mask is not None:
                lexical_all[~mask] = 0.0
            if mode == "lexical":
                assert lexical_all is not None
                rows = fusion.top_rows(lexical_all, k, positive_only=True)
                return [
                    Hit(self.chunk_ids[r], float(lexical_all[r]), 0.0, float(lexical_all[r]))
                    for r in rows
                ]
            assert query_vec is not None
            dense_rows, dense_scores = self.dense.search(query_vec, n, mask)
            if mode == "dense":
                return [
                    Hit(self.chunk_ids[r], float(sc), float(sc), 0.0)
                    for r, sc in zip(dense_rows[:k], dense_scores[:k], strict=True)
                ]
            assert lexical_all is not None
            lexical_rows = fusion.top_rows(lexical_all, n, positive_only=True)
            union = np.union1d(dense_rows, lexical_rows)
            dense_all = np.zeros(len(self.chunk_ids), dtype=np.float64)
            dense_all[union] = self.dense.vectors[union] @ query_vec
            if s.fusion == "rrf":
                fused = fusion.rrf(dense_rows, lexical_rows, s.rrf_k)
            else:
                fused = fusion.zscore(dense_rows, dense_all, lexical_rows, lexical_all)
            best = sorted(fused.items(), key=lambda kv: -kv[1])[:k]
            return [
                Hit(self.chunk_ids[r], sc, float(dense_all[r]), float(lexical_all[r]))
                for r, sc in best
            ]

    def stats(self) -> dict[str, object]:
        return {
            "chunks": self.live,
            "index": self.dense.kind,
            "recall_at_10": self.dense.recall,
            "ef_search": self.dense.ef_search if self.dense.kind == "hnsw" else None,
        }


class MemoryIndexes:
    """The per-user indexes of this process: loaded lazily, persisted under the data dir."""

    def __init__(self, settings: RagSettings, store: RagStore, dim: int) -> None:
        self.settings = settings
        self.store = store
        self.dim = dim
        self.root = settings.common.data_dir / "rag" / "index"
        self._users: dict[str, UserMemory] = {}
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}

    def folder(self, user_id: str) -> Path:
        return self.root / hashlib.sha256(user_id.encode()).hexdigest()[:32]

    def get(self, user_id: str) -> UserMemory:
        """The user's index, (re)loaded when the database has changed since it was built."""
        generation = self.store.generation(user_id)
        with self._lock:
            memory = self._users.get(user_id)
            user_lock = self._user_locks.setdefault(user_id, threading.Lock())
        if memory is not None and memory.generation == generation and not memory.too_sparse:
            return memory
        with user_lock:
            memory = self._users.get(user_id)
            if memory is not None and memory.generation == generation and not memory.too_sparse:
                return memory
            # Many deleted rows: rebuild compactly from the database, not from the saved graph.
            memory = self._load(
                user_id, generation, use_saved=memory is None or not memory.too_sparse
            )
            with self._lock:
                self._users[user_id] = memory
            return memory

    def _load(self, user_id: str, generation: int, use_saved: bool = True) -> UserMemory:
        memory = UserMemory(self.settings, self.dim, generation)
        rows = {r.chunk_id: r for r in self.store.index_rows(user_id)}
        folder = self.folder(user_id)
        saved_ids: list[int] = []
        manifest: dict[str, object] = {}
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            saved_ids = np.load(folder / "row_ids.npy").tolist()
        except (OSError, ValueError):
            pass
        if use_saved and saved_ids and manifest.get("kind") == "hnsw":
            # Rebuild rows in the saved order so the saved graph's labels still match.
            ordered = [rows.pop(c, None) for c in saved_ids]
            filler = [
                r if r is not None else _dead(self.dim, c)
                for r, c in zip(ordered, saved_ids, strict=True)
            ]
            memory.add(filler)
            memory.remove([c for r, c in zip(ordered, saved_ids, strict=True) if r is None])
            adopted = memory.dense.load_graph(folder, manifest)
            log.info("user index loaded from disk (graph adopted: %s)", adopted)
        memory.add(list(rows.values()))
        memory.dirty = True
        return memory

    def apply(
        self,
        user_id: str,
        generation: int,
        *,
        add: list[IndexRow] | None = None,
        remove: list[int] | None = None,
    ) -> None:
        """Apply this process's own write (which moved the user to `generation`) in memory.

        If another writer got in between, the cached index stays stale and the next `get`
        reloads it from the database.
        """
        with self._lock:
            memory = self._users.get(user_id)
        if memory is None:
            return
        with memory.lock:
            if add:
                memory.add(add)
            if remove:
                memory.remove(remove)
            if memory.generation == generation - 1:
                memory.generation = generation

    def save(self, user_id: str | None = None) -> None:
        """Persist changed indexes (the HNSW graph and row order)."""
        with self._lock:
            users = [(u, m) for u, m in self._users.items() if user_id in (None, u)]
        for uid, memory in users:
            with memory.lock:
                if not memory.dirty:
                    continue
                folder = self.folder(uid)
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                memory.dense.save(folder, {"generation": memory.generation})
                np.save(folder / "row_ids.npy", np.asarray(memory.chunk_ids, dtype=np.int64))
                memory.dirty = False

    def rebuild(self, user_id: str) -> UserMemory:
        """Rebuild the user's index from the database alone (ignoring saved files), then save it."""
        generation = self.store.generation(user_id)
        with self._lock:
            user_lock = self._user_locks.setdefault(user_id, threading.Lock())
        with user_lock:
            memory = self._load(user_id, generation, use_saved=False)
            with self._lock:
                self._users[user_id] = memory
        self.save(user_id)
        return memory

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)


def _dead(dim: int, chunk_id: int) -> IndexRow:
    """Stand-in for a row deleted since the graph was saved (masked right after)."""
    return IndexRow(chunk_id, "", "", "", 0.0, (), "", np.zeros(dim, np.float32))
