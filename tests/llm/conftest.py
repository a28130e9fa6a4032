"""Fixtures of the LLM service tests: settings in a fresh data dir, a fake model, an app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, internal_headers
from nemo_server.llm.app import create_app
from nemo_server.llm.engines.fake import FakeModel
from nemo_server.llm.settings import LlmSettings


@pytest.fixture
def settings(common_settings: CommonSettings, tmp_path: Path) -> LlmSettings:
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-local.gguf").write_bytes(b"GGUF")  # a user's model found in models_dir
    return LlmSettings(common=common_settings, models_dir=models, keep_alive_s=300)


@pytest.fixture
def fake() -> FakeModel:
    return FakeModel(n_ctx=64)


@pytest.fixture
def client(settings: LlmSettings, fake: FakeModel) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=fake)) as c:
        yield c


@pytest.fixture
def alice(settings: LlmSettings) -> dict[str, str]:
    return internal_headers(settings.common, ALICE)
