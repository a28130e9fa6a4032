"""Child process that parses one PDF or DOCX under memory and CPU limits.

Run as `python -m nemo_server.rag.parsing.worker KIND MAX_CHARS MEMORY_MB CPU_S`; the document
arrives on stdin, the blocks leave as one JSON object on stdout. Limits are set here, first,
so a bomb-like file kills only this process.
"""

from __future__ import annotations

import io
import json
import re
import resource
import sys
import zipfile
from typing import Any

from nemo_server.rag.parsing.blocks import Block, HeadingTracker, ParseError

MAX_DOCX_UNCOMPRESSED = 256 << 20
MAX_DOCX_RATIO = 200


def _limit(memory_mb: int, cpu_s: int) -> None:
    memory = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))


def _paragraphs(page_text: str) -> list[str]:
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", page_text)  # words hyphenated across lines
    parts = re.split(r"\n\s*\n", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


def parse_pdf(data: bytes, max_chars: int) -> list[Block]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception:
                unlocked = 0
            if not unlocked:
                raise ParseError(
                    "the PDF is encrypted (password-protected); upload an unlocked copy"
                )
        blocks: list[Block] = []
        total = 0
        for number, page in enumerate(reader.pages, start=1):
            for para in _paragraphs(page.extract_text() or ""):
                total += len(para)
                if total > max_chars:
                    raise ParseError(f"the PDF holds more than {max_chars} characters of text")
                blocks.append(Block(text=para, page=number))
        return blocks
    except ParseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ParseError(f"the PDF is corrupt or unreadable: {exc}") from None
    except Exception as exc:  # pypdf raises many types for hostile files (LimitReachedError...)
        raise ParseError(f"the PDF cannot be parsed: {type(exc).__name__}: {exc}") from None


def _check_zip(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ParseError(f"the DOCX is corrupt (not a readable zip archive): {exc}") from None
    names = {i.filename for i in infos}
    if "word/document.xml" not in names:
        raise ParseError("the DOCX is corrupt: it has no word/document.xml")
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > MAX_DOCX_UNCOMPRESSED or (total > (8 << 20) and total / packed > MAX_DOCX_RATIO):
        raise ParseError(
            f"the DOCX expands to {total} bytes from {len(data)} (a zip bomb?); refusing it"
        )


def parse_docx(data: bytes, max_chars: int) -> list[Block]:
    _check_zip(data)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        headings = HeadingTracker()
        blocks: list[Block] = []
        total = 0
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                rows = [" | ".join(c.text.strip() for c in row.cells) for row in item.rows]
                text = "\n".join(r for r in rows if r.strip(" |"))
                kind = "table"
            else:
                text = " ".join(item.text.split())
                style = (item.style.name if item.style is not None else "") or ""
                level = _heading_level(style)
                if level and text:
                    headings.push(level, text)
                    blocks.append(
                        Block(text=text, kind="heading", heading=headings.path, level=level)
                    )
                    continue
                kind = "list" if "List" in style else "paragraph"
            if not text.strip():
                continue
            total += len(text)
            if total > max_chars:
                raise ParseError(f"the DOCX holds more than {max_chars} characters of text")
            blocks.append(Block(text=text, kind=kind, heading=headings.path))
        return blocks
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(
            f"the DOCX is corrupt or unreadable: {type(exc).__name__}: {exc}"
        ) from None


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.match(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def main(argv: list[str]) -> int:
    kind, max_chars, memory_mb, cpu_s = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    _limit(memory_mb, cpu_s)
    data = sys.stdin.buffer.read()
    result: dict[str, Any]
    try:
        parser = parse_pdf if kind == "pdf" else parse_docx
        blocks = parser(data, max_chars)
        result = {"ok": True, "blocks": [b.to_dict() for b in blocks]}
    except ParseError as exc:
        result = {"ok": False, "error": str(exc)}
    except MemoryError:
        result = {"ok": False, "error": f"parsing needed more than {memory_mb} MB (a bomb?)"}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
