"""Parsers for text formats: plain text, Markdown, HTML and transcripts (in process; cheap)."""

from __future__ import annotations

import re
from typing import Any

from nemo_server.rag.parsing.blocks import Block, HeadingTracker

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LIST = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
_SETEXT = re.compile(r"^(=+|-+)\s*$")


def parse_plain(text: str) -> list[Block]:
    """Paragraphs separated by blank lines."""
    return [Block(text=" ".join(p.split())) for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_markdown(text: str) -> list[Block]:
    """Headings, paragraphs, list runs and fenced code, each block under its heading path."""
    blocks: list[Block] = []
    headings = HeadingTracker()
    buf: list[str] = []
    buf_kind = "paragraph"
    in_code = False

    def flush() -> None:
        nonlocal buf, buf_kind
        body = "\n".join(buf).strip() if buf_kind == "code" else " ".join(" ".join(buf).split())
        if body:
            blocks.append(Block(text=body, kind=buf_kind, heading=headings.path))
        buf, buf_kind = [], "paragraph"

    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("```") or line.strip().startswith("~~~"):
            if in_code:
                flush()
                in_code = False
            else:
                flush()
                in_code, buf_kind = True, "code"
            continue
        if in_code:
            buf.append(line)
            continue
        match = _MD_HEADING.match(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if match:
            flush()
            headings.push(len(match.group(1)), match.group(2))
            blocks.append(
                Block(
                    text=match.group(2),
                    kind="heading",
                    heading=headings.path,
                    level=len(match.group(1)),
                )
            )
            continue
        if line.strip() and _SETEXT.match(nxt) and not buf:
            level = 1 if nxt.strip().startswith("=") else 2
            headings.push(level, line)
            blocks.append(
                Block(text=line.strip(), kind="heading", heading=headings.path, level=level)
            )
            continue
        if _SETEXT.match(line) and blocks and blocks[-1].kind == "heading" and not buf:
            continue
        if not line.strip():
            flush()
            continue
        if _MD_LIST.match(line) and buf_kind != "list":
            flush()
            buf_kind = "list"
        buf.append(line)
    flush()
    return blocks


_HTML_DROP = ("script", "style", "noscript", "template", "svg", "head", "nav", "iframe", "form")
_HTML_BLOCKS = ("p", "li", "pre", "blockquote", "td", "th", "dd", "dt", "figcaption", "caption")


def parse_html(html: str) -> list[Block]:
    """Headings and block elements of an HTML page; scripts, styles and navigation dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(list(_HTML_DROP)):
        tag.decompose()
    headings = HeadingTracker()
    blocks: list[Block] = []
    names = [f"h{i}" for i in range(1, 7)] + list(_HTML_BLOCKS)
    for el in soup.find_all(names):
        if el.name in _HTML_BLOCKS and el.find_parent(list(_HTML_BLOCKS)) is not None:
            continue  # nested block: its text is in the parent's
        text = " ".join(el.get_text(" ").split())
        if not text:
            continue
        if el.name.startswith("h") and el.name[1:].isdigit():
            level = int(el.name[1:])
            headings.push(level, text)
            blocks.append(Block(text=text, kind="heading", heading=headings.path, level=level))
        else:
            kind = {"pre": "code", "li": "list", "td": "table", "th": "table"}.get(
                el.name, "paragraph"
            )
            blocks.append(Block(text=text, kind=kind, heading=headings.path))
    if not blocks:
        body = " ".join(soup.get_text(" ").split())
        if body:
            blocks.append(Block(text=body))
    return blocks


def parse_transcript(segments: list[dict[str, Any]]) -> list[Block]:
    """Transcript segments (`start`, `end`, `text`, optional `speaker`) as timed blocks."""
    blocks = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        if not text:
            continue
        speaker = seg.get("speaker")
        blocks.append(
            Block(
                text=text,
                kind="segment",
                start=float(seg["start"]) if seg.get("start") is not None else None,
                end=float(seg["end"]) if seg.get("end") is not None else None,
                speaker=str(speaker) if speaker else None,
            )
        )
    return blocks
