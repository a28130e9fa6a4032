"""How the RAG service asks the LLM service for an answer (OpenAI-compatible chat, streamed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from nemo_server.common.auth import Principal
from nemo_server.common.clients import ServiceClient
from nemo_server.common.errors import ServiceUnavailable


class LlmClient(Protocol):
    """Streams the text of a chat completion."""

    def stream_chat(
        self,
        principal: Principal,
        messages: list[dict[str, str]],
        *,
        model: str | None,
        max_tokens: int,
    ) -> AsyncIterator[str]:
        """Text deltas of the assistant's reply, in order."""
        ...

    async def aclose(self) -> None: ...


class HttpLlmClient:
    """The LLM service's `/v1/chat/completions` with `stream: true`, parsed from SSE."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def stream_chat(
        self,
        principal: Principal,
        messages: list[dict[str, str]],
        *,
        model: str | None,
        max_tokens: int,
    ) -> AsyncIterator[str]:
        body: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": 0.2,
        }
        if model:
            body["model"] = model
        async with self._client.stream(
            "POST", "/v1/chat/completions", principal, json=body
        ) as resp:
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    continue
                if "error" in event:
                    message = (event["error"] or {}).get("message", "the LLM failed")
                    raise ServiceUnavailable(f"the LLM service failed mid-answer: {message}")
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

    async def aclose(self) -> None:
        await self._client.aclose()
