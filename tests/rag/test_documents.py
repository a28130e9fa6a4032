"""Ingest of every supported format, bad input, de-duplication, listing and deletion."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.rag.conftest import ingest
from tests.rag.factory import (
    ENCRYPTED_OFFICE,
    LEGACY_DOC,
    PNG,
    make_bomb_pdf,
    make_corrupt_docx,
    make_docx,
    make_encrypted_pdf,
    make_pdf,
    make_zip_bomb_docx,
)


def upload(
    client: TestClient, headers: dict[str, str], name: str, data: bytes, mime: str, **form: str
):
    return client.post(
        "/v1/rag/documents", files={"file": (name, data, mime)}, data=form, headers=headers
    )


def search(client: TestClient, headers: dict[str, str], query: str, **body) -> list[dict]:
    r = client.post("/v1/rag/search", json={"query": query, **body}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_markdown_chunks_follow_headings_and_cite_them(client: TestClient, alice: dict) -> None:
    text = "# Garden\n\nIntro words.\n\n## Tomatoes\n\nTomatoes need sun and water daily.\n\n## Roses\n\nRoses need pruning in March."
    doc = upload(client, alice, "garden.md", text.encode(), "text/markdown").json()
    assert doc["kind"] == "text/markdown" and doc["chunk_count"] == 3
    hit = search(client, alice, "pruning roses march", k=1)[0]
    assert hit["text"] == "Roses need pruning in March."
    assert hit["citation"]["heading"] == "Garden > Roses"
    assert hit["title"] == "garden.md"


def test_html_drops_scripts_and_keeps_sections(client: TestClient, alice: dict) -> None:
    html = (
        "<html><head><script>steal()</script></head><body><nav>menu</nav><h1>Manual</h1>"
        "<h2>Boiler</h2><p>Bleed the radiators every autumn.</p></body></html>"
    )
    doc = upload(client, alice, "manual.html", html.encode(), "text/html").json()
    chunks = client.get(f"/v1/rag/documents/{doc['id']}?include_chunks=true", headers=alice).json()[
        "chunks"
    ]
    assert [c["text"] for c in chunks] == ["Bleed the radiators every autumn."]
    assert chunks[0]["citation"]["heading"] == "Manual > Boiler"


def test_pdf_hits_cite_their_page(client: TestClient, alice: dict) -> None:
    pdf = make_pdf(
        ["Whales sing long songs in the ocean.", "Dolphins use echolocation to hunt fish."]
    )
    r = upload(client, alice, "sea.pdf", pdf, "application/pdf", title="Sea life")
    assert r.status_code == 201, r.text
    hit = search(client, alice, "dolphins echolocation", k=1)[0]
    assert hit["citation"]["page_start"] == 2 and hit["citation"]["label"] == "p. 2"
    assert hit["title"] == "Sea life"


def test_docx_headings_and_tables(client: TestClient, alice: dict) -> None:
    data = make_docx(
        "Handbook",
        {"Holidays": ["Staff get thirty days of holiday."]},
        [["Plan", "Price"], ["Gold", "12 euros"]],
    )
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert upload(client, alice, "handbook.docx", data, mime).status_code == 201
    hit = search(client, alice, "how many holiday days", k=1)[0]
    assert hit["citation"]["heading"] == "Handbook > Holidays"
    assert any("Gold | 12 euros" in h["text"] for h in search(client, alice, "gold plan price"))


def test_transcript_chunks_carry_speakers_and_times(client: TestClient, alice: dict) -> None:
    segments = [
        {"start": 0.0, "end": 4.0, "speaker": "Ana", "text": "Let us plan the product launch."},
        {
            "start": 4.0,
            "end": 9.5,
            "speaker": "Ben",
            "text": "The launch date is the ninth of May.",
        },
    ]
    body = {"segments": segments, "title": "Standup", "date": "2026-05-01T09:00:00Z"}
    doc = ingest(client, alice, **body)
    assert doc["kind"] == "transcript" and doc["source"] == "transcript"
    hit = search(client, alice, "launch date", k=1)[0]
    assert hit["citation"]["start"] == 0.0 and hit["citation"]["end"] == 9.5
    assert hit["citation"]["speakers"] == ["Ana", "Ben"]
    assert hit["citation"]["label"] == "00:00:00\u201300:00:09, Ana, Ben"
    assert "Ben: The launch date" in hit["text"]
    # The same transcript as the transcription service's JSON file.
    import json

    r = upload(
        client,
        alice,
        "standup.json",
        json.dumps({"text": "x", "segments": segments}).encode(),
        "application/json",
    )
    assert r.status_code == 200 and r.json()["deduplicated"] is True


def test_reingest_does_not_duplicate(client: TestClient, alice: dict) -> None:
    first = ingest(
        client, alice, text="Bread needs flour, water, salt and yeast.", metadata={"v": 1}
    )
    again = client.post(
        "/v1/rag/documents",
        json={"text": "Bread  needs flour, water, salt and yeast. "},
        headers=alice,
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["deduplicated"] is True
    assert client.get("/v1/rag/documents", headers=alice).json()["total"] == 1
    assert len(search(client, alice, "bread flour yeast")) == 1
    # Another collection is another namespace.
    other = ingest(
        client, alice, text="Bread needs flour, water, salt and yeast.", collection="recipes"
    )
    assert other["id"] != first["id"]
    names = {
        c["name"]: c["documents"]
        for c in client.get("/v1/rag/collections", headers=alice).json()["data"]
    }
    assert names == {"default": 1, "recipes": 1}


def test_batch_ingest_and_listing(client: TestClient, alice: dict) -> None:
    docs = [{"text": f"Note number {i} about topic {i}.", "title": f"n{i}"} for i in range(5)]
    r = client.post("/v1/rag/documents/batch", json={"documents": docs}, headers=alice)
    assert r.status_code == 201 and len(r.json()["data"]) == 5
    page = client.get("/v1/rag/documents?limit=2&offset=1", headers=alice).json()
    assert page["total"] == 5 and len(page["data"]) == 2
    # Every document of a batch is searchable at once (one transaction, one index update).
    assert {h["title"] for h in search(client, alice, "note number 3 topic 3")} >= {"n3"}


def test_a_batch_repeating_a_document_stores_it_once(client: TestClient, alice: dict) -> None:
    ingest(client, alice, text="Already stored: the boiler is serviced in May.")
    docs = [
        {"text": "The roof was repaired in June.", "title": "roof"},
        {"text": "Already stored: the boiler is serviced in May.", "title": "old"},
        {"text": "The garden fence is painted green.", "title": "fence"},
        {"text": "The garden fence is painted green.", "title": "fence again"},
    ]
    r = client.post("/v1/rag/documents/batch", json={"documents": docs}, headers=alice)
    assert r.status_code == 201
    out = r.json()["data"]
    assert [d["deduplicated"] for d in out] == [False, True, False, True]
    assert out[3]["id"] == out[2]["id"]
    assert client.get("/v1/rag/documents", headers=alice).json()["total"] == 3
    assert [h["title"] for h in search(client, alice, "garden fence painted")][:1] == ["fence"]


def test_delete_removes_chunks_vectors_and_cached_results(client: TestClient, alice: dict) -> None:
    doc = ingest(client, alice, text="The spare key is under the blue flowerpot.")
    assert search(client, alice, "spare key flowerpot")  # now cached
    r = client.delete(f"/v1/rag/documents/{doc['id']}", headers=alice)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert search(client, alice, "spare key flowerpot") == []
    assert search(client, alice, "spare key flowerpot", mode="dense") == []
    assert client.get(f"/v1/rag/documents/{doc['id']}", headers=alice).status_code == 404
    assert client.delete(f"/v1/rag/documents/{doc['id']}", headers=alice).status_code == 404


def test_unsupported_and_mislabelled_types_are_415(client: TestClient, alice: dict) -> None:
    r = upload(client, alice, "photo.png", PNG, "image/png")
    assert r.status_code == 415 and "image/png" in r.json()["error"]["message"]
    r = upload(client, alice, "notes.txt", make_pdf(["hidden"]), "text/plain")
    assert r.status_code == 415
    assert (
        "text/plain" in r.json()["error"]["message"]
        and "application/pdf" in r.json()["error"]["message"]
    )
    r = upload(client, alice, "report.pdf", b"just some words", "application/pdf")
    assert r.status_code == 415 and "application/pdf" in r.json()["error"]["message"]
    r = upload(client, alice, "old.doc", LEGACY_DOC, "application/msword")
    assert r.status_code == 415 and "application/msword" in r.json()["error"]["message"]
    r = client.post(
        "/v1/rag/documents",
        content=b"a,b",
        headers={**alice, "content-type": "application/x-thing"},
    )
    assert r.status_code == 415 and r.json()["error"]["param"] == "file"


def test_encrypted_corrupt_and_bomb_files_are_400(client: TestClient, alice: dict) -> None:
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    cases = [
        ("locked.pdf", make_encrypted_pdf(), "application/pdf", "encrypted"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <<<< garbage", "application/pdf", "PDF"),
        ("bomb.pdf", make_bomb_pdf(100), "application/pdf", "PDF"),
        ("locked.docx", ENCRYPTED_OFFICE, mime, "encrypted"),
        ("broken.docx", make_corrupt_docx(), mime, "corrupt"),
        ("bomb.docx", make_zip_bomb_docx(24), mime, "bomb"),
    ]
    for name, data, media, word in cases:
        r = upload(client, alice, name, data, media)
        assert r.status_code == 400, (name, r.text)
        assert word in r.json()["error"]["message"] and r.json()["error"]["param"] == "file"


def test_empty_documents_are_422(client: TestClient, alice: dict) -> None:
    assert upload(client, alice, "empty.txt", b"", "text/plain").status_code == 422
    assert upload(client, alice, "blank.md", b"   \n\n  ", "text/markdown").status_code == 422
    assert upload(client, alice, "blank.pdf", make_pdf([""]), "application/pdf").status_code == 422
    r = client.post("/v1/rag/documents", json={"text": "  "}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["param"] == "text"
    r = client.post("/v1/rag/documents", json={"segments": []}, headers=alice)
    assert r.status_code == 422 and r.json()["error"]["param"] == "segments"
    r = client.post("/v1/rag/documents", json={"title": "no body"}, headers=alice)
    assert r.status_code == 422
    r = upload(client, alice, "a.txt", b"hello", "text/plain", metadata="[1, 2")
    assert r.status_code == 422 and r.json()["error"]["param"] == "metadata"


def test_requests_without_internal_token_are_refused(client: TestClient) -> None:
    assert client.post("/v1/rag/search", json={"query": "x"}).status_code == 401
    assert client.get("/v1/rag/documents").status_code == 401


def test_raw_body_upload_and_form_metadata(client: TestClient, alice: dict) -> None:
    r = client.post(
        "/v1/rag/documents?title=Raw%20PDF&collection=scans&filename=raw.pdf",
        content=make_pdf(["Raw uploads work as well."]),
        headers={**alice, "content-type": "application/pdf"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Raw PDF" and r.json()["collection"] == "scans"
    r = upload(
        client,
        alice,
        "m.txt",
        b"Form metadata travels.",
        "text/plain",
        metadata='{"project": "apollo", "n": [1, 2]}',
        source="email",
    )
    assert r.status_code == 201 and r.json()["metadata"] == {"project": "apollo", "n": [1, 2]}
    hit = search(client, alice, "form metadata travels", k=1)[0]
    assert hit["metadata"] == {"project": "apollo", "n": [1, 2]} and hit["source"] == "email"
