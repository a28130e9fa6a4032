"""Stored results on PostgreSQL (the scale-out deployment), through the real migrations."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, BOB, internal_headers
from nemo_server.emotion.app import create_app
from nemo_server.emotion.engines.fake import FakeSentiment, FakeTextEngine, FakeTranscriber
from nemo_server.emotion.settings import EmotionSettings
from tests.emotion.conftest import TRANSCRIPT, two_speaker_recording

pytestmark = pytest.mark.integration


def test_results_on_postgres_are_scoped_per_user(postgres_url, data_dir, unique) -> None:
    prefix = f"t{unique}_"
    common = CommonSettings(database_url=postgres_url, database_schema_prefix=prefix)
    settings = EmotionSettings(common=common)
    app = create_app(
        settings,
        text_engine=FakeTextEngine(),
        sentiment_engine=FakeSentiment(),
        transcriber=FakeTranscriber(TRANSCRIPT),
    )
    try:
        with TestClient(app) as client:
            alice = internal_headers(common, ALICE)
            client.post("/v1/emotion/text", json={"inputs": ["so happy"]}, headers=alice)
            client.post(
                "/v1/emotion/audio",
                files={"file": ("a.wav", two_speaker_recording(), "audio/wav")},
                data={"source_id": "call-1"},
                headers=alice,
            )
            rows = client.get("/v1/emotion/results", headers=alice).json()["data"]
            assert [(r["kind"], r["label"]) for r in rows] == [
                ("text", "joy"),
                ("segment", "sadness"),
                ("segment", "surprise"),
            ]
            bob = client.get("/v1/emotion/results", headers=internal_headers(common, BOB))
            assert bob.json()["data"] == []
            assert client.get("/readyz").status_code == 200
    finally:
        engine = create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}emotion" CASCADE'))
        engine.dispose()
