"""Retrieval benchmark of the RAG service: quality on CISI, latency at 100k chunks, ingest speed.

Quality: nDCG@10 and recall@100 for dense, BM25 and hybrid (both fusions) on the CISI test
collection, through the service's HTTP API (in process) with the bundled all-MiniLM-L6-v2.
Latency: p50/p99 of `POST /v1/rag/search` over 100k synthetic chunks (clustered vectors,
Zipf-sampled CISI words), against the baseline of exact brute-force dense + BM25 scoring.
Ingest: chunks/s of `POST /v1/rag/documents/batch` versus raw sentence-transformers encoding
of the same chunk texts. Prints one JSON line.

    .venv/bin/python benchmarks/retrieval.py [--data ../shared/data/ir-cisi] [--chunks 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def load_cisi(folder: Path) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, set[str]]]:
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    qrels: dict[str, set[str]] = {}
    for line in (folder / "qrels.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(did)
    return corpus, queries, qrels


def ndcg_at(ranking: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def recall_at(ranking: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranking[:k]) & relevant) / len(relevant)


def make_app(data_dir: Path, embedder: Any, **overrides: Any) -> tuple[Any, Any, dict[str, str]]:
    from fastapi.testclient import TestClient

    from nemo_server.common.settings import CommonSettings
    from nemo_server.common.testing import ALICE, internal_headers
    from nemo_server.rag.app import create_app
    from nemo_server.rag.settings import RagSettings

    common = CommonSettings(data_dir=data_dir, secrets_dir=data_dir / "none")
    settings = RagSettings(common=common, search_cache_size=0, **overrides)
    client = TestClient(create_app(settings, embedder=embedder))
    client.__enter__()
    # Internal tokens live 60 s: mint one per request.
    client.event_hooks["request"] = [
        lambda request: request.headers.update(internal_headers(common, ALICE))
    ]
    return client, settings, {}


def quality_and_ingest(folder: Path, embedder: Any, work: Path) -> dict[str, Any]:
    from nemo_server.rag.chunking import chunk_document
    from nemo_server.rag.parsing.text import parse_plain

    corpus, queries, qrels = load_cisi(folder)
    docs = [
        {
            "text": f"{d['title']}\n\n{d['text']}",
            "title": d["title"],
            "metadata": {"cisi_id": d["_id"]},
        }
        for d in corpus
    ]
    client, settings, headers = make_app(work / "cisi", embedder)
    # Baseline: the same chunk texts straight through sentence-transformers. The two are
    # interleaved slice by slice so that load from other processes hits both alike.
    embedder.encode([d["text"] for d in docs[:64]])  # warm-up
    raw_s = ingest_s = 0.0
    raw_chunks = stored = 0
    for i in range(0, len(docs), 128):
        part = docs[i : i + 128]
        texts = [
            c.embed_text
            for d in part
            for c in chunk_document(
                parse_plain(d["text"]), settings.chunk_words, settings.chunk_overlap_words
            )
        ]

        def raw(texts: list[str] = texts) -> float:
            t0 = time.perf_counter()
            embedder._model.encode(
                texts,
                batch_size=settings.embedding_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            return time.perf_counter() - t0

        def service(part: list[dict[str, Any]] = part) -> tuple[float, Any]:
            t0 = time.perf_counter()
            r = client.post("/v1/rag/documents/batch", json={"documents": part}, headers=headers)
            r.raise_for_status()
            return time.perf_counter() - t0, r

        # Alternate which goes first (ABBA), so a drift in machine load favours neither.
        if (i // 128) % 2:
            raw_s += raw()
            spent, r = service()
        else:
            spent, r = service()
            raw_s += raw()
        ingest_s += spent
        raw_chunks += len(texts)
        stored += sum(d["chunk_count"] for d in r.json()["data"])
    service = client.app.state.rag
    out: dict[str, Any] = {
        "cisi_docs": len(docs),
        "cisi_chunks": stored,
        "ingest_chunks_per_s": round(stored / ingest_s, 1),
        "raw_encode_chunks_per_s": round(raw_chunks / raw_s, 1),
        "ingest_vs_raw": round((stored / ingest_s) / (raw_chunks / raw_s), 3),
    }
    judged = [q for q in queries if q in qrels]
    runs = {
        "dense": ("dense", None),
        "bm25": ("lexical", None),
        "hybrid_rrf": ("hybrid", "rrf"),
        "hybrid_zscore": ("hybrid", "zscore"),
    }
    for name, (mode, fusion) in runs.items():
        if fusion:
            service.settings.fusion = fusion
        ndcg, rec = [], []
        for qid in judged:
            r = client.post(
                "/v1/rag/search",
                json={"query": queries[qid], "k": 200, "mode": mode},
                headers=headers,
            )
            r.raise_for_status()
            ranking = list(dict.fromkeys(h["metadata"]["cisi_id"] for h in r.json()["results"]))
            ndcg.append(ndcg_at(ranking, qrels[qid]))
            rec.append(recall_at(ranking, qrels[qid]))
        out[f"{name}_ndcg@10"] = round(float(np.mean(ndcg)), 4)
        out[f"{name}_recall@100"] = round(float(np.mean(rec)), 4)
    best_single = max(out["dense_ndcg@10"], out["bm25_ndcg@10"])
    for fusion in ("rrf", "zscore"):
        out[f"hybrid_{fusion}_vs_best_single"] = round(
            out[f"hybrid_{fusion}_ndcg@10"] / best_single, 3
        )
    client.__exit__(None, None, None)
    return out


def synthetic(n: int, dim: int, words: list[str], seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(10, n // 50), dim)).astype(np.float32)
    vecs = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, dim)).astype(
        np.float32
    )
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ranks = np.arange(1, len(words) + 1)
    p = 1 / ranks
    p /= p.sum()
    picks = rng.choice(len(words), size=(n, 60), p=p)
    return vecs, [" ".join(words[j] for j in row) for row in picks]


def latency(
    folder: Path, embedder: Any, work: Path, n_chunks: int, n_queries: int
) -> dict[str, Any]:
    from nemo_server.common.testing import ALICE
    from nemo_server.rag.bm25 import tokenize
    from nemo_server.rag.chunking import ChunkDraft
    from nemo_server.rag.query_embedding import embed_query
    from nemo_server.rag.store import NewDocument

    corpus, queries, _ = load_cisi(folder)
    counts: dict[str, int] = {}
    for d in corpus:
        for w in d["text"].lower().split():
            counts[w] = counts.get(w, 0) + 1
    words = sorted(counts, key=lambda w: -counts[w])[:20000]
    vecs, texts = synthetic(n_chunks, embedder.dim, words)
    client, _settings, headers = make_app(work / "latency", embedder)
    service = client.app.state.rag
    t0 = time.perf_counter()
    per_doc = 100
    for start in range(0, n_chunks, per_doc):
        drafts = [ChunkDraft(text=t) for t in texts[start : start + per_doc]]
        new = NewDocument(
            ALICE.user_id,
            "default",
            f"synthetic {start}",
            "synthetic",
            "text/plain",
            None,
            f"h{start}",
            {},
            None,
            sum(len(t) for t in texts[start : start + per_doc]),
        )
        service.store.insert(new, drafts, vecs[start : start + per_doc])
    store_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    memory = service.indexes.get(ALICE.user_id)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    memory.dense._sync()  # the HNSW graph is built lazily, on the first search
    hnsw_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    service.indexes.save(ALICE.user_id)
    save_s = time.perf_counter() - t0
    qtexts = [queries[q] for q in sorted(queries)]
    qtexts = [" ".join(t.split()[:24]) for t in qtexts] * (n_queries // len(qtexts) + 1)
    qtexts = [f"{t} {i}" for i, t in enumerate(qtexts[:n_queries])]  # distinct: no cache help

    def timed_together(variants: dict[str, Any]) -> dict[str, dict[str, float]]:
        """Each query runs every variant in turn, so machine load affects all alike."""
        for fn in variants.values():
            fn(qtexts[0])
        ms: dict[str, list[float]] = {name: [] for name in variants}
        for q in qtexts:
            for name, fn in variants.items():
                t = time.perf_counter()
                fn(q)
                ms[name].append((time.perf_counter() - t) * 1000)
        return {
            name: {
                "p50_ms": round(float(np.percentile(v, 50)), 2),
                "p99_ms": round(float(np.percentile(v, 99)), 2),
            }
            for name, v in ms.items()
        }

    def http(mode: str) -> Any:
        def run(q: str) -> None:
            # The mode in the text keeps the service's query-embedding cache out of the figures.
            client.post(
                "/v1/rag/search",
                json={"query": f"{q} {mode}", "k": 10, "mode": mode},
                headers=headers,
            ).raise_for_status()

        return run

    qvecs = {q: v for q, v in zip(qtexts, embedder.encode(qtexts), strict=True)}

    def index_only(q: str) -> None:
        memory.search(qvecs[q], q, 10, "hybrid", _no_filters())

    all_vecs = memory.dense.vectors

    def brute(q: str) -> None:  # baseline: exact dense over every vector + the same BM25
        sims = all_vecs @ qvecs[q]
        np.argpartition(-sims, 100)[:100]
        lex = memory.bm25.scores(q)
        np.argpartition(-lex, 100)[:100]

    out = {
        "chunks": memory.live,
        "index": memory.dense.kind,
        "hnsw_recall@10": memory.dense.recall,
        "ef_search": memory.dense.ef_search,
        "db_insert_s": round(store_s, 1),
        "index_load_db_and_bm25_s": round(build_s, 1),
        "hnsw_build_and_recall_check_s": round(hnsw_s, 1),
        "index_save_s": round(save_s, 1),
        **timed_together(
            {
                "search_http_hybrid": http("hybrid"),
                "search_http_dense": http("dense"),
                "search_http_lexical": http("lexical"),
                "query_encode": lambda q: embed_query(embedder, q),
                "query_encode_sentence_transformers": lambda q: embedder._model.encode([q]),
                "index_hybrid_no_encode": index_only,
                "baseline_bruteforce_no_encode": brute,
            }
        ),
        "bm25_query_terms_mean": round(float(np.mean([len(tokenize(q)) for q in qtexts])), 1),
    }
    out["speedup_vs_bruteforce"] = round(
        out["baseline_bruteforce_no_encode"]["p50_ms"] / out["index_hybrid_no_encode"]["p50_ms"], 2
    )
    # Restart: the saved HNSW graph is adopted instead of rebuilt.
    service.indexes.forget(ALICE.user_id)
    t0 = time.perf_counter()
    reloaded = service.indexes.get(ALICE.user_id)
    reloaded.dense.search(qvecs[qtexts[0]], 10)
    out["index_reload_from_disk_s"] = round(time.perf_counter() - t0, 1)
    client.__exit__(None, None, None)
    return out


def _no_filters() -> Any:
    from nemo_server.rag.memory import Filters

    return Filters()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "ir-cisi")
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks for the latency run")
    parser.add_argument("--queries", type=int, default=300, help="queries timed per variant")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--query-engine", choices=["onnx", "torch"], default="onnx")
    parser.add_argument("--skip", choices=["quality", "latency"], action="append", default=[])
    args = parser.parse_args()
    from nemo_server.rag.engines.minilm import MiniLMEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        embedder = MiniLMEmbedder(
            device=args.device,
            onnx_cache_dir=Path(tmp) / "onnx" if args.query_engine == "onnx" else None,
        )
        run(args, embedder)


def run(args: argparse.Namespace, embedder: Any) -> None:
    result: dict[str, Any] = {
        "benchmark": "rag-retrieval",
        "device": embedder.device,
        "query_engine": embedder.query_backend,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        if "quality" not in args.skip:
            result.update(quality_and_ingest(args.data.resolve(), embedder, Path(tmp)))
        if "latency" not in args.skip:
            result["latency"] = latency(
                args.data.resolve(), embedder, Path(tmp), args.chunks, args.queries
            )
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
