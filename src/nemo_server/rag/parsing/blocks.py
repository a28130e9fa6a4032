"""The structural unit every parser yields and the chunker consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class ParseError(Exception):
    """The document cannot be read (encrypted, corrupt, too large when expanded...)."""


@dataclass
class Block:
    """A paragraph-like piece of a document with where it sits.

    `kind` is `heading`, `paragraph`, `list`, `code`, `table` or `segment` (transcripts).
    `heading` is the path of section titles above the block (" > " joined).
    """

    text: str
    kind: str = "paragraph"
    heading: str | None = None
    page: int | None = None
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    level: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class HeadingTracker:
    """Keeps the current path of section headings while a document is walked."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> None:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title.strip()))

    @property
    def path(self) -> str | None:
        return " > ".join(t for _, t in self._stack) or None
