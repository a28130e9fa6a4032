"""Structure-aware chunking: sections stay whole where they fit, transcripts split at turns.

Documents: a heading opens a new section and no chunk crosses a section or page boundary; blocks of a
section are packed up to `chunk_words`; a block larger than that is split at sentence ends with
a small overlap. Transcripts: consecutive segments are packed up to `chunk_words` words or
`max_seconds`, preferring to break where the speaker changes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from nemo_server.rag.parsing.blocks import Block

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


@dataclass
class ChunkDraft:
    """A chunk before it is stored: its text and where it came from."""

    text: str
    heading: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    speakers: list[str] = field(default_factory=list)

    @property
    def embed_text(self) -> str:
        """What is embedded and indexed: the section path gives the text its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def _words(text: str) -> int:
    return len(text.split())


def split_long(text: str, limit: int, overlap: int) -> list[str]:
    """Split a long text at sentence ends (words as a last resort), with overlapping words."""
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    pieces: list[list[str]] = []
    current: list[str] = []
    for sentence in sentences:
        words = sentence.split()
        while len(words) > limit:  # one enormous "sentence": cut it by words
            if current:
                pieces.append(current)
                current = []
            pieces.append(words[:limit])
            words = words[limit - overlap :] if overlap < limit else words[limit:]
        if current and len(current) + len(words) > limit:
            pieces.append(current)
            current = current[-overlap:] if overlap else []
        current = current + words
    if current and (not pieces or current != pieces[-1][-len(current) :]):
        pieces.append(current)
    return [" ".join(p) for p in pieces]


def chunk_document(blocks: list[Block], chunk_words: int, overlap: int) -> list[ChunkDraft]:
    """Chunks of a structured document (text, Markdown, HTML, PDF, DOCX)."""
    chunks: list[ChunkDraft] = []
    parts: list[Block] = []
    size = 0

    def flush() -> None:
        nonlocal parts, size
        if parts:
            pages = [b.page for b in parts if b.page is not None]
            chunks.append(
                ChunkDraft(
                    text="\n".join(b.text for b in parts),
                    heading=parts[0].heading,
                    page_start=min(pages) if pages else None,
                    page_end=max(pages) if pages else None,
                )
            )
        parts, size = [], 0

    for block in blocks:
        if block.kind == "heading":
            flush()
            continue
        n = _words(block.text)
        if n > chunk_words:
            flush()
            for piece in split_long(block.text, chunk_words, overlap):
                parts = [Block(text=piece, kind=block.kind, heading=block.heading, page=block.page)]
                flush()
            continue
        # Sections and pages bound chunks, so a citation names one heading and one page.
        if parts and (
            size + n > chunk_words
            or block.heading != parts[0].heading
            or block.page != parts[-1].page
        ):
            flush()
        parts.append(block)
        size += n
    flush()
    if not chunks:  # a document of headings only: the headings are its text
        titles = [b for b in blocks if b.text.strip()]
        if titles:
            chunks.append(ChunkDraft(text="\n".join(b.text for b in titles)))
    return dedupe(chunks)


def chunk_transcript(blocks: list[Block], chunk_words: int, max_seconds: float) -> list[ChunkDraft]:
    """Chunks of a transcript: speaker-labelled lines with their time range."""
    chunks: list[ChunkDraft] = []
    parts: list[Block] = []
    size = 0

    def flush() -> None:
        nonlocal parts, size
        if not parts:
            return
        lines: list[str] = []
        for b in parts:
            label = f"{b.speaker}: " if b.speaker else ""
            if lines and b.speaker and lines[-1].startswith(label):
                lines[-1] += " " + b.text
            else:
                lines.append(label + b.text)
        speakers = list(dict.fromkeys(b.speaker for b in parts if b.speaker))
        starts = [b.start for b in parts if b.start is not None]
        ends = [b.end for b in parts if b.end is not None]
        chunks.append(
            ChunkDraft(
                text="\n".join(lines),
                start_s=min(starts) if starts else None,
                end_s=max(ends) if ends else None,
                speakers=speakers,
            )
        )
        parts, size = [], 0

    for block in blocks:
        n = _words(block.text)
        if parts:
            first = parts[0].start
            span = (block.end or block.start or 0) - first if first is not None else 0
            turn = block.speaker != parts[-1].speaker
            if size + n > chunk_words or span > max_seconds or (turn and size >= chunk_words // 2):
                flush()
        if n > chunk_words:
            for piece in split_long(block.text, chunk_words, 0):
                parts = [
                    Block(
                        text=piece,
                        kind="segment",
                        start=block.start,
                        end=block.end,
                        speaker=block.speaker,
                    )
                ]
                flush()
            continue
        parts.append(block)
        size += n
    flush()
    return dedupe(chunks)


def dedupe(chunks: list[ChunkDraft]) -> list[ChunkDraft]:
    """Drop repeated chunks within one document (boilerplate, repeated footers)."""
    seen: set[str] = set()
    out = []
    for chunk in chunks:
        key = hashlib.sha256(" ".join(chunk.embed_text.lower().split()).encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            out.append(chunk)
    return out
