"""The transcription service as the emotion service sees it: audio in, timed segments out."""

from __future__ import annotations

from typing import Any, Protocol

from nemo_server.common.auth import Principal
from nemo_server.common.clients import ServiceClient


class Transcriber(Protocol):
    """Turns an audio upload into a verbose transcript with speakers."""

    async def transcribe(
        self,
        principal: Principal,
        data: bytes,
        filename: str,
        content_type: str,
        language: str | None = None,
    ) -> dict[str, Any]:
        """OpenAI `verbose_json`: `{"text", "language", "duration", "segments": [{"start",
        "end", "text", "speaker"?}, ...]}`."""
        ...


class TranscriptionServiceClient:
    """Calls `POST /v1/audio/transcriptions` (verbose_json, diarize) on the user's behalf."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def transcribe(
        self,
        principal: Principal,
        data: bytes,
        filename: str,
        content_type: str,
        language: str | None = None,
    ) -> dict[str, Any]:
        form = {"response_format": "verbose_json", "diarize": "true"}
        if language:
            form["language"] = language
        return await self.client.json(
            "POST",
            "/v1/audio/transcriptions",
            principal,
            files={"file": (filename, data, content_type)},
            data=form,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
