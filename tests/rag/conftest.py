"""Fixtures of the RAG tests: settings, a fake LLM, and an in-process client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.auth import Principal
from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, BOB, internal_headers
from nemo_server.rag.app import create_app
from nemo_server.rag.engines.fake import HashEmbedder
from nemo_server.rag.settings import RagSettings


class FakeLlm:
    """Streams a scripted reply and records the prompts it was given."""

    def __init__(self, pieces: list[str] | None = None) -> None:
        self.pieces = pieces or ["Nemo keeps ", "memory [1]."]
        self.calls: list[list[dict[str, str]]] = []

    async def stream_chat(
        self,
        principal: Principal,
        messages: list[dict[str, str]],
        *,
        model: str | None,
        max_tokens: int,
    ) -> AsyncIterator[str]:
        self.calls.append(messages)
        for piece in self.pieces:
            yield piece

    async def aclose(self) -> None:
        return None


@pytest.fixture
def rag_settings(common_settings: CommonSettings) -> RagSettings:
    return RagSettings(common=common_settings, embedding_engine="hash", parse_timeout_s=10)


@pytest.fixture
def fake_llm() -> FakeLlm:
    return FakeLlm()


@pytest.fixture
def client(rag_settings: RagSettings, fake_llm: FakeLlm) -> Iterator[TestClient]:
    app = create_app(rag_settings, embedder=HashEmbedder(), llm_client=fake_llm)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def alice(common_settings: CommonSettings) -> dict[str, str]:
    return internal_headers(common_settings, ALICE)


@pytest.fixture
def bob(common_settings: CommonSettings) -> dict[str, str]:
    return internal_headers(common_settings, BOB)


def ingest(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/rag/documents", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()
