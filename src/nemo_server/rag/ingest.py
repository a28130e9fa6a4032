"""From an upload or a JSON body to structured blocks (the parsing half of ingest)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nemo_server.common.errors import BadRequest, Unprocessable, UnsupportedMediaType
from nemo_server.rag.parsing import text as text_parsers
from nemo_server.rag.parsing.blocks import Block, ParseError
from nemo_server.rag.parsing.detect import decode_text, detect
from nemo_server.rag.parsing.sandbox import parse_in_sandbox
from nemo_server.rag.settings import RagSettings


@dataclass
class Parsed:
    """Blocks of one document and what kind of document it was."""

    blocks: list[Block]
    kind: str  # a media type, or "transcript"
    title: str | None = None

    @property
    def is_transcript(self) -> bool:
        return self.kind == "transcript"

    def content_hash(self) -> str:
        """Identity of the content for de-duplication (whitespace and case do not matter)."""
        h = hashlib.sha256(self.kind.encode())
        for b in self.blocks:
            h.update(b"\x00" + " ".join(b.text.lower().split()).encode())
            if b.start is not None or b.speaker:
                h.update(f"|{b.start}|{b.speaker}".encode())
        return h.hexdigest()


def parse_text(text: str, fmt: str) -> Parsed:
    if fmt == "markdown":
        return Parsed(text_parsers.parse_markdown(text), "text/markdown")
    if fmt == "html":
        return Parsed(text_parsers.parse_html(text), "text/html")
    return Parsed(text_parsers.parse_plain(text), "text/plain")


def parse_segments(segments: list[dict[str, Any]]) -> Parsed:
    return Parsed(text_parsers.parse_transcript(segments), "transcript")


def _parse_json_upload(data: bytes) -> Parsed:
    try:
        body = json.loads(decode_text(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the JSON file is not valid JSON: {exc}", param="file") from None
    if isinstance(body, dict) and isinstance(body.get("segments"), list):
        segments = [s for s in body["segments"] if isinstance(s, dict)]
        parsed = parse_segments(segments)
    elif isinstance(body, dict) and isinstance(body.get("text"), str):
        parsed = parse_text(body["text"], str(body.get("format") or "text"))
    else:
        raise Unprocessable(
            "a JSON upload must be an object with `text` or a transcript's `segments`", param="file"
        )
    if isinstance(body.get("title"), str):
        parsed.title = body["title"][:500]
    return parsed


async def parse_upload(
    data: bytes, content_type: str | None, filename: str | None, settings: RagSettings
) -> Parsed:
    """Detect the format of an upload and parse it (PDF and DOCX in a limited child process)."""
    if not data:
        raise Unprocessable("the uploaded file is empty", param="file")
    detected = detect(data, content_type, filename)
    if detected.kind in ("pdf", "docx"):
        try:
            blocks = await parse_in_sandbox(
                detected.kind,
                data,
                timeout_s=settings.parse_timeout_s,
                memory_mb=settings.parse_memory_mb,
                max_chars=settings.max_extracted_chars,
            )
        except ParseError as exc:
            raise BadRequest(str(exc), param="file") from None
        return Parsed(blocks, detected.mime)
    if detected.kind == "json":
        return _parse_json_upload(data)
    try:
        text = decode_text(data)
    except UnicodeDecodeError:
        raise UnsupportedMediaType(
            f"the file is labelled {detected.mime!r} but is not UTF-8 text", param="file"
        ) from None
    return parse_text(text, detected.kind)
