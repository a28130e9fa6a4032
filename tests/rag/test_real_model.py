"""The bundled all-MiniLM-L6-v2 end to end: per-user isolation with canaries, embeddings API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, BOB, internal_headers
from nemo_server.rag.app import create_app
from nemo_server.rag.engines.minilm import MiniLMEmbedder
from nemo_server.rag.settings import RagSettings
from tests.rag.conftest import FakeLlm, ingest

ALICE_CANARY = "The purple giraffe named Zephyr guards vault number 7413 in the old harbour."
BOB_CANARY = "The orange octopus called Quill hides the ledger inside locker 2289 at the gym."
CANARIES = {ALICE.user_id: ALICE_CANARY, BOB.user_id: BOB_CANARY}
PARAPHRASE = {  # same meaning, few shared words
    ALICE.user_id: "Which long-necked animal protects the safe by the port?",
    BOB.user_id: "Where does the eight-armed sea creature conceal the account book?",
}
NEAR = {  # one word changed: an embedding almost identical to the canary's
    ALICE.user_id: ALICE_CANARY.replace("old", "ancient"),
    BOB.user_id: BOB_CANARY.replace("gym", "club"),
}
FILLER = [
    "Meeting notes: the quarterly budget was approved after a short discussion.",
    "Recipe: knead the dough for ten minutes and let it rise for an hour.",
    "Travel plan: the train to Lyon leaves at eight in the morning.",
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEmbedder:
    # As the service runs it: queries through the ONNX Runtime export, batches through torch.
    return MiniLMEmbedder(device="cpu", onnx_cache_dir=tmp_path_factory.mktemp("onnx"))


@pytest.fixture
def real_client(common_settings: CommonSettings, embedder: MiniLMEmbedder) -> Iterator[TestClient]:
    settings = RagSettings(common=common_settings)
    with TestClient(create_app(settings, embedder=embedder, llm_client=FakeLlm())) as c:
        yield c


def test_users_never_retrieve_each_others_canaries(
    real_client: TestClient, common_settings: CommonSettings, embedder: MiniLMEmbedder
) -> None:
    users = {
        ALICE.user_id: internal_headers(common_settings, ALICE),
        BOB.user_id: internal_headers(common_settings, BOB),
    }
    owned: dict[str, str] = {}
    for uid, headers in users.items():
        for text in FILLER:
            ingest(real_client, headers, text=text)
        owned[uid] = ingest(real_client, headers, text=CANARIES[uid], title="canary")["id"]
    for uid, near in NEAR.items():  # the "near" probes really are near in embedding space
        a, b = embedder.encode([near, CANARIES[uid]])
        assert float(a @ b) > 0.9
    for uid, headers in users.items():
        other = next(o for o in users if o != uid)
        probes = [CANARIES[other], PARAPHRASE[other], NEAR[other], "giraffe octopus vault ledger"]
        for probe in probes:
            for mode in ("hybrid", "dense", "lexical"):
                r = real_client.post(
                    "/v1/rag/search", json={"query": probe, "k": 20, "mode": mode}, headers=headers
                )
                assert r.status_code == 200
                for hit in r.json()["results"]:
                    assert hit["document_id"] != owned[other]
                    assert CANARIES[other] not in hit["text"]
            r = real_client.post(
                "/v1/rag/answer", json={"query": probe, "stream": False}, headers=headers
            )
            assert CANARIES[other] not in str(r.json())
        assert (
            real_client.get(f"/v1/rag/documents/{owned[other]}", headers=headers).status_code == 404
        )
        assert (
            real_client.delete(f"/v1/rag/documents/{owned[other]}", headers=headers).status_code
            == 404
        )
        listed = real_client.get("/v1/rag/documents", headers=headers).json()["data"]
        assert owned[other] not in {d["id"] for d in listed}
        # The owner does find it by paraphrase: the probes above were real tests.
        r = real_client.post(
            "/v1/rag/search",
            json={"query": PARAPHRASE[uid], "k": 2, "mode": "dense"},
            headers=headers,
        )
        assert r.json()["results"][0]["document_id"] == owned[uid]


def test_embeddings_are_minilm_vectors(
    real_client: TestClient, common_settings: CommonSettings
) -> None:
    headers = internal_headers(common_settings, ALICE)
    r = real_client.post(
        "/v1/embeddings",
        json={
            "input": [
                "A cat sits on the mat.",
                "A kitten is resting on a rug.",
                "Stock markets fell sharply today.",
            ]
        },
        headers=headers,
    )
    body = r.json()
    assert r.status_code == 200 and body["model"] == "all-MiniLM-L6-v2"
    vecs = np.asarray([d["embedding"] for d in body["data"]])
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert body["usage"]["prompt_tokens"] > 10


def test_semantic_search_finds_a_paraphrase_that_bm25_misses(
    real_client: TestClient, common_settings: CommonSettings
) -> None:
    headers = internal_headers(common_settings, ALICE)
    for text in FILLER:
        ingest(real_client, headers, text=text)
    query = "when does the rail journey depart"
    lexical = real_client.post(
        "/v1/rag/search", json={"query": query, "mode": "lexical"}, headers=headers
    )
    assert lexical.json()["results"] == []
    hybrid = real_client.post("/v1/rag/search", json={"query": query, "k": 1}, headers=headers)
    assert "train to Lyon" in hybrid.json()["results"][0]["text"]


def test_queries_run_on_onnx_with_the_torch_vectors_and_the_export_is_kept(
    embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    assert embedder.query_backend == "onnx"
    queries = [BOB_CANARY, "budget meeting", PARAPHRASE[ALICE.user_id]]
    torch_vectors = embedder._model.encode(queries, normalize_embeddings=True)
    assert np.min(np.sum(embedder.encode(queries) * torch_vectors, axis=1)) > 0.999

    first = MiniLMEmbedder(device="cpu", onnx_cache_dir=tmp_path)
    [exported] = tmp_path.glob("*.onnx")
    stamp = exported.stat().st_mtime_ns
    again = MiniLMEmbedder(device="cpu", onnx_cache_dir=tmp_path)  # a restart reuses the file
    assert (first.query_backend, again.query_backend) == ("onnx", "onnx")
    assert exported.stat().st_mtime_ns == stamp

    exported.write_bytes(b"truncated by a crash")  # a damaged file is exported again
    healed = MiniLMEmbedder(device="cpu", onnx_cache_dir=tmp_path)
    assert healed.query_backend == "onnx"
    assert np.min(np.sum(healed.encode(queries) * torch_vectors, axis=1)) > 0.999


def test_queries_fall_back_to_torch_when_the_export_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should go")
    embedder = MiniLMEmbedder(device="cpu", onnx_cache_dir=blocker / "onnx")
    assert embedder.query_backend == "torch"
    vector = embedder.encode([BOB_CANARY])
    assert vector.shape == (1, embedder.dim) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
