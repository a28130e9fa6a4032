"""Search: filters, metadata round trip, modes, embeddings API, index size switch and persistence."""

from __future__ import annotations

import base64
import shutil

import numpy as np
from fastapi.testclient import TestClient

from nemo_server.common.testing import ALICE, internal_headers
from nemo_server.rag.app import create_app
from nemo_server.rag.engines.fake import HashEmbedder
from nemo_server.rag.settings import RagSettings
from tests.rag.conftest import ingest
from tests.rag.test_documents import search


def test_metadata_comes_back_exactly_as_given(client: TestClient, alice: dict) -> None:
    metadata = {"tags": ["a", "ü"], "nested": {"n": 1.5, "none": None, "flag": False}, "id": "x-1"}
    ingest(client, alice, text="Quarterly numbers rose by ten percent.", metadata=metadata)
    hit = search(client, alice, "quarterly numbers")[0]
    assert hit["metadata"] == metadata
    assert set(hit) >= {"document_id", "chunk_id", "text", "score", "title", "citation"}


def test_filters_by_collection_source_speaker_and_date(client: TestClient, alice: dict) -> None:
    ingest(
        client,
        alice,
        text="Budget meeting notes: budget approved.",
        collection="work",
        source="notes",
        date="2026-01-10T00:00:00Z",
    )
    ingest(
        client,
        alice,
        text="Budget for the holiday trip to Rome.",
        collection="home",
        source="diary",
        date="2026-03-10T00:00:00Z",
    )
    ingest(
        client,
        alice,
        segments=[
            {"start": 0, "end": 3, "speaker": "Carla", "text": "The budget needs a second review."},
        ],
        date="2026-02-10T00:00:00Z",
    )

    def titles(**f) -> set[str]:
        return {h["text"].split(":")[0] for h in search(client, alice, "budget", **f)}

    assert len(search(client, alice, "budget")) == 3
    assert [h["collection"] for h in search(client, alice, "budget", collection="home")] == ["home"]
    assert [h["source"] for h in search(client, alice, "budget", filters={"source": "notes"})] == [
        "notes"
    ]
    by_speaker = search(client, alice, "budget", speaker="carla")
    assert len(by_speaker) == 1 and by_speaker[0]["citation"]["speakers"] == ["Carla"]
    ranged = search(
        client, alice, "budget", date_from="2026-02-01T00:00:00Z", date_to="2026-03-01T00:00:00Z"
    )
    assert len(ranged) == 1 and ranged[0]["source"] == "transcript"
    assert search(client, alice, "budget", collection="nope") == []
    assert titles(mode="lexical", collection="work") == {"Budget meeting notes"}


def test_modes_and_validation(client: TestClient, alice: dict) -> None:
    ingest(client, alice, text="Photosynthesis turns light into sugar in leaves.")
    for mode in ("hybrid", "dense", "lexical"):
        r = client.post(
            "/v1/rag/search", json={"query": "photosynthesis light", "mode": mode}, headers=alice
        )
        assert r.status_code == 200 and r.json()["mode"] == mode and r.json()["results"]
    r = client.post("/v1/rag/search", json={"query": ""}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["param"].endswith("query")
    r = client.post("/v1/rag/search", json={"query": "x", "k": 0}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["param"].endswith("k")
    r = client.post(
        "/v1/rag/search", content=b"query=x", headers={**alice, "content-type": "text/plain"}
    )
    assert r.status_code == 415


def test_embeddings_endpoint_is_openai_shaped(client: TestClient, alice: dict) -> None:
    r = client.post(
        "/v1/embeddings",
        json={"input": ["hello world", "bye"], "model": "all-MiniLM-L6-v2"},
        headers=alice,
    )
    body = r.json()
    assert r.status_code == 200 and body["object"] == "list" and len(body["data"]) == 2
    vec = np.asarray(body["data"][0]["embedding"])
    assert abs(np.linalg.norm(vec) - 1) < 1e-5 and body["usage"]["prompt_tokens"] == 3
    r = client.post(
        "/v1/embeddings", json={"input": "hello world", "encoding_format": "base64"}, headers=alice
    )
    decoded = np.frombuffer(base64.b64decode(r.json()["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, vec)
    assert (
        client.post(
            "/v1/embeddings", json={"input": "x", "model": "gpt-9"}, headers=alice
        ).status_code
        == 404
    )
    r = client.post("/v1/embeddings", json={"input": [[1, 2, 3]]}, headers=alice)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    assert client.post("/v1/embeddings", json={"input": []}, headers=alice).status_code == 422
    assert (
        client.post(
            "/v1/embeddings", json={"input": "x", "dimensions": 3}, headers=alice
        ).status_code
        == 400
    )


def _clustered_docs(n_docs: int) -> list[dict]:
    topics = [
        "volcano lava eruption",
        "violin orchestra concert",
        "satellite orbit launch",
        "bread oven yeast",
    ]
    return [
        {
            "text": f"{topics[i % 4]} report {i}: {topics[i % 4]} details number {i}",
            "title": f"d{i}",
        }
        for i in range(n_docs)
    ]


def test_large_index_switches_to_hnsw_with_checked_recall_and_persists(
    rag_settings: RagSettings,
) -> None:
    settings = rag_settings.model_copy(update={"exact_index_max": 40})
    headers = internal_headers(settings.common, ALICE)
    with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
        r = c.post(
            "/v1/rag/documents/batch", json={"documents": _clustered_docs(120)}, headers=headers
        )
        assert r.status_code == 201
        first = search(c, headers, "violin concert", k=5, mode="dense")
        stats = c.get("/v1/rag/stats", headers=headers).json()
        assert stats["index"] == "hnsw" and stats["chunks"] == 120
        assert stats["recall_at_10"] >= 0.9
        assert all("violin" in h["text"] for h in first)
    folder = next((settings.common.data_dir / "rag" / "index").iterdir())
    assert (folder / "dense.faiss").exists()  # written at shutdown
    # A restart adopts the saved graph; the same query gives the same answer.
    with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
        assert [h["chunk_id"] for h in search(c, headers, "violin concert", k=5, mode="dense")] == [
            h["chunk_id"] for h in first
        ]
        doc = first[0]["document_id"]
        assert c.delete(f"/v1/rag/documents/{doc}", headers=headers).status_code == 200
    # Without the files, the index is rebuilt from the database.
    shutil.rmtree(folder)
    with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
        again = search(c, headers, "violin concert", k=5, mode="dense")
        assert doc not in {h["document_id"] for h in again} and len(again) == 5
        assert c.get("/v1/rag/stats", headers=headers).json()["chunks"] == 119


def test_another_replica_sees_writes_through_the_database(rag_settings: RagSettings) -> None:
    headers = internal_headers(rag_settings.common, ALICE)
    with (
        TestClient(create_app(rag_settings, embedder=HashEmbedder())) as one,
        TestClient(create_app(rag_settings, embedder=HashEmbedder())) as two,
    ):
        assert search(two, headers, "glacier") == []
        ingest(one, headers, text="The glacier retreated two metres.")
        assert len(search(two, headers, "glacier")) == 1


def test_works_on_postgresql(postgres_url: str, rag_settings: RagSettings, unique: str) -> None:
    from sqlalchemy import create_engine, text

    common = rag_settings.common.model_copy(
        update={"database_url": postgres_url, "database_schema_prefix": f"t{unique}_"}
    )
    settings = rag_settings.model_copy(update={"common": common})
    headers = internal_headers(common, ALICE)
    try:
        with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
            doc = ingest(c, headers, text="Postgres keeps the chunks.", metadata={"k": [1]})
            hit = search(c, headers, "postgres chunks")[0]
            assert hit["document_id"] == doc["id"] and hit["metadata"] == {"k": [1]}
            assert c.delete(f"/v1/rag/documents/{doc['id']}", headers=headers).status_code == 200
    finally:
        engine = create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "t{unique}_rag" CASCADE'))
        engine.dispose()


def test_many_deletions_compact_the_index(client: TestClient, alice: dict) -> None:
    r = client.post(
        "/v1/rag/documents/batch", json={"documents": _clustered_docs(120)}, headers=alice
    )
    ids = [d["id"] for d in r.json()["data"]]
    assert search(client, alice, "volcano")  # index loaded
    for doc_id in ids[:40]:
        assert client.delete(f"/v1/rag/documents/{doc_id}", headers=alice).status_code == 200
    hits = search(client, alice, "volcano lava eruption", k=50)
    assert hits and not {h["document_id"] for h in hits} & set(ids[:40])
    memory = client.app.state.rag.indexes.get(ALICE.user_id)
    assert memory.dense.rows == 80 and memory.bm25.rows == 80
    r = client.post("/v1/rag/reindex", headers=alice)
    assert r.status_code == 200 and r.json()["chunks"] == 80
    assert search(client, alice, "volcano lava eruption", k=5)


def test_concurrent_ingests_and_searches(client: TestClient, alice: dict, bob: dict) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> list[int]:
        headers = alice if i % 2 else bob
        codes = [
            client.post(
                "/v1/rag/documents", json={"text": f"Parallel note {i} on kites."}, headers=headers
            ).status_code
        ]
        codes.append(
            client.post("/v1/rag/search", json={"query": "kites"}, headers=headers).status_code
        )
        return codes

    with ThreadPoolExecutor(6) as pool:
        codes = [c for result in pool.map(work, range(12)) for c in result]
    assert set(codes) <= {200, 201}
    for headers in (alice, bob):
        assert client.get("/v1/rag/documents", headers=headers).json()["total"] == 6
        assert len(search(client, headers, "parallel note kites", k=20)) == 6
