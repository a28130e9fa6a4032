"""Which format an upload is: its label (content type, extension) checked against its bytes.

An unsupported type, or a label that contradicts the content, is a 415 naming both; a PDF or
DOCX whose bytes are unreadable is a 400 (decided later by the parser).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePath

from nemo_server.common.errors import BadRequest, UnsupportedMediaType

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
KINDS = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    DOCX: "docx",
    "application/json": "json",
}
EXTENSIONS = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": DOCX,
    ".json": "application/json",
}
GENERIC = {
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/x-www-form-urlencoded",
}
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%!PS", "application/postscript"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf", "application/x-7z-compressed"),
    (b"Rar!", "application/vnd.rar"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
    (b"\x7fELF", "application/x-executable"),
    (b"{\\rtf", "application/rtf"),
]
_ENCRYPTED_OOXML = "EncryptedPackage".encode("utf-16-le")


@dataclass(frozen=True)
class Detected:
    kind: str  # text, markdown, html, pdf, docx, json
    mime: str


def sniff(data: bytes) -> str | None:
    """The media type the bytes show, `text` for decodable text, None for unknown binary."""
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        if b"word/" in data[:65536] or (b"[Content_Types].xml" in data[:65536] and b"word" in data):
            return DOCX
        if b"xl/" in data[:65536]:
            return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if b"ppt/" in data[:65536]:
            return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        return "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "encrypted-ooxml" if _ENCRYPTED_OOXML in data else "application/msword"
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"WEBP", b"AVI "):
        return {b"WAVE": "audio/wav", b"WEBP": "image/webp", b"AVI ": "video/x-msvideo"}[head[8:12]]
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    try:
        decode_text(data[:65536], partial=True)
    except UnicodeDecodeError:
        return None
    return "text"


def decode_text(data: bytes, *, partial: bool = False) -> str:
    """UTF-8 (BOM tolerated) or UTF-16 with a BOM."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if partial:
        # A multi-byte character may be cut at the end of the sample.
        for cut in range(4):
            try:
                return data[: len(data) - cut].decode("utf-8-sig")
            except UnicodeDecodeError:
                if cut == 3:
                    raise
    return data.decode("utf-8-sig")


def _label(content_type: str | None, filename: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in GENERIC or (
        media == "text/plain" and filename and PurePath(filename).suffix.lower() in EXTENSIONS
    ):
        # Browsers and curl label many files text/plain or octet-stream: the extension is better.
        ext = PurePath(filename or "").suffix.lower()
        return EXTENSIONS.get(ext, media)
    return media


def _text_kind(data: bytes) -> str:
    sample = data[:4096].lstrip().lower()
    if sample.startswith((b"<!doctype html", b"<html")) or b"<body" in sample:
        return "html"
    if sample.startswith((b"{", b"[")):
        try:
            json.loads(decode_text(data))
            return "json"
        except (ValueError, UnicodeDecodeError):
            pass
    if any(line.startswith(b"#") for line in data[:4096].splitlines()):
        return "markdown"
    return "text"


def detect(data: bytes, content_type: str | None, filename: str | None) -> Detected:
    """The format to parse `data` as; raises 415 (unsupported or mislabelled) or 400."""
    label = _label(content_type, filename)
    seen = sniff(data)
    name = f" ({filename})" if filename else ""
    if seen == "encrypted-ooxml":
        raise BadRequest(
            f"the file{name} is an encrypted (password-protected) Office document; upload an unlocked copy",
            param="file",
        )
    if seen in ("application/pdf", DOCX):
        if label and label not in GENERIC and KINDS.get(label) != KINDS[seen]:
            raise UnsupportedMediaType(
                f"the file{name} is labelled {label!r} but its content is {seen!r}", param="file"
            )
        return Detected(KINDS[seen], seen)
    if seen is not None and seen != "text":
        raise UnsupportedMediaType(
            f"files of type {seen!r} are not supported{name}; send text, Markdown, HTML, PDF, DOCX or JSON"
            + (f" (it was labelled {label!r})" if label and label != seen else ""),
            param="file",
        )
    if seen is None:
        if KINDS.get(label) in ("pdf", "docx"):
            raise BadRequest(
                f"the file{name} is not a valid {label} document (corrupt?)", param="file"
            )
        raise UnsupportedMediaType(
            f"files of type {label or 'application/octet-stream'!r} with unrecognised binary "
            f"content are not supported{name}",
            param="file",
        )
    # Text content.
    if KINDS.get(label) in ("pdf", "docx"):
        raise UnsupportedMediaType(
            f"the file{name} is labelled {label!r} but its content is plain text", param="file"
        )
    if label in KINDS:
        return Detected(KINDS[label], label)
    if label.startswith("text/") or label in GENERIC or label.endswith(("+xml", "/xml", "yaml")):
        kind = _text_kind(data)
        mime = {
            "text": "text/plain",
            "markdown": "text/markdown",
            "html": "text/html",
            "json": "application/json",
        }[kind]
        return Detected(kind, mime)
    raise UnsupportedMediaType(
        f"files of type {label!r} are not supported{name}; send text, Markdown, HTML, PDF, DOCX or JSON",
        param="file",
    )
