"""Units: chunking, BM25, type detection, fusion, the parser sandbox's limits."""

from __future__ import annotations

import numpy as np
import pytest

from nemo_server.common.errors import BadRequest, UnsupportedMediaType
from nemo_server.rag.bm25 import Bm25Index, tokenize
from nemo_server.rag.chunking import chunk_document, chunk_transcript, split_long
from nemo_server.rag.engines.fake import HashEmbedder
from nemo_server.rag.fusion import rrf
from nemo_server.rag.parsing.blocks import ParseError
from nemo_server.rag.parsing.detect import DOCX, detect
from nemo_server.rag.parsing.sandbox import parse_in_sandbox
from nemo_server.rag.parsing.text import parse_markdown, parse_transcript
from nemo_server.rag.query_embedding import MAX_SENTENCES, embed_query, query_sentences
from tests.rag.factory import make_bomb_pdf, make_docx, make_pdf


def test_long_sections_split_at_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} says something useful here." for i in range(60)]
    md = "# A\n\nShort intro.\n\n## B\n\n" + " ".join(sentences) + "\n\n## C\n\nTail."
    chunks = chunk_document(parse_markdown(md), chunk_words=50, overlap=10)
    headings = [c.heading for c in chunks]
    assert headings[0] == "A" and headings[-1] == "A > C"
    middle = [c for c in chunks if c.heading == "A > B"]
    assert len(middle) >= 6 and all(len(c.text.split()) <= 50 for c in middle)
    assert middle[0].text.startswith("Sentence number 0") and middle[1].text.split()[:3] != [
        "Sentence",
        "number",
        "0",
    ]
    assert set(middle[0].text.split()[-10:]) & set(middle[1].text.split()[:10])  # overlap
    assert chunks[0].embed_text == "A\nShort intro."


def test_a_huge_unbroken_text_is_still_cut() -> None:
    pieces = split_long("word " * 1000, 100, 10)
    assert len(pieces) >= 10 and all(len(p.split()) <= 100 for p in pieces)


def test_transcripts_break_at_speaker_turns_and_time() -> None:
    segments = [
        {
            "start": i * 10.0,
            "end": i * 10.0 + 9,
            "speaker": "A" if i < 6 else "B",
            "text": " ".join(["talk"] * 20),
        }
        for i in range(12)
    ]
    chunks = chunk_transcript(parse_transcript(segments), chunk_words=200, max_seconds=300)
    assert [c.speakers for c in chunks] == [["A"], ["B"]]
    assert (chunks[0].start_s, chunks[0].end_s) == (0.0, 59.0)
    assert chunks[0].text.startswith("A: talk") and "\n" not in chunks[0].text
    short = chunk_transcript(parse_transcript(segments), chunk_words=1000, max_seconds=35)
    assert all((c.end_s or 0) - (c.start_s or 0) <= 50 for c in short)


def test_bm25_ranks_by_term_rarity_and_forgets_deleted_rows() -> None:
    index = Bm25Index()
    index.add(["the cat sat on the mat", "a dog in the fog", "cats and dogs and cats"])
    index.add(["zebra crossing"])
    scores = index.scores("cats zebra")
    assert scores.argmax() == 3 and scores[2] > scores[0] > 0 and scores[1] == 0
    index.remove([3])
    assert index.scores("zebra").max() == 0 and index.live == 3
    assert tokenize("Running quickly, the libraries!") == ["runn", "quick", "library"]
    for _ in range(20):  # segments merge without changing scores
        index.add(["filler text"])
    assert index.scores("cats")[2] > 0


def test_rrf_prefers_items_both_retrievers_like() -> None:
    fused = rrf(np.array([1, 2, 3]), np.array([3, 4, 1]))
    assert max(fused, key=fused.get) in (1, 3) and fused[3] > fused[2]


def test_detection_by_content_not_only_label() -> None:
    assert detect(b"# Title\n\ntext", None, "notes.md").kind == "markdown"
    assert detect(b"<!doctype html><p>x</p>", "application/octet-stream", None).kind == "html"
    assert detect(make_pdf(["x"]), "application/octet-stream", "scan").kind == "pdf"
    assert detect(make_docx("T", {}), None, "a.docx").mime == DOCX
    assert detect(b'{"text": "x"}', None, "t.json").kind == "json"
    with pytest.raises(UnsupportedMediaType, match="application/zip"):
        detect(b"PK\x03\x04" + b"\x00" * 40, None, "a.zip")
    with pytest.raises(UnsupportedMediaType, match=r"labelled 'text/csv'.*application/pdf"):
        detect(make_pdf(["x"]), "text/csv", "a.csv")
    with pytest.raises(BadRequest):
        detect(b"\x00\x01\x02garbage", "application/pdf", "a.pdf")


async def test_parser_runs_under_a_time_limit() -> None:
    with pytest.raises(ParseError, match="longer than"):
        await parse_in_sandbox(
            "pdf", make_bomb_pdf(5), timeout_s=0.01, memory_mb=1024, max_chars=10**6
        )
    with pytest.raises(ParseError, match="more than 10 characters"):
        await parse_in_sandbox(
            "pdf", make_pdf(["a long enough text"]), timeout_s=20, memory_mb=1024, max_chars=10
        )


def test_a_query_of_several_sentences_is_the_mean_of_their_embeddings() -> None:
    embedder = HashEmbedder()
    query = "What is information science? Give definitions where possible."
    assert query_sentences(query) == [
        "What is information science?",
        "Give definitions where possible.",
    ]
    parts = embedder.encode(query_sentences(query))
    expected = parts.mean(axis=0) / np.linalg.norm(parts.mean(axis=0))
    assert np.allclose(embed_query(embedder, query), expected, atol=1e-6)
    single = "Where is the ledger hidden"
    assert np.allclose(embed_query(embedder, single), embedder.encode([single])[0], atol=1e-6)
    many = " ".join(f"Sentence number {i} ends here." for i in range(20))
    assert len(query_sentences(many)) == MAX_SENTENCES  # the tail folds into the last piece
    assert query_sentences(many)[-1].endswith("19 ends here.")
