"""Hostile and broken uploads never crash the service; the app builds from the environment."""

from __future__ import annotations

import os
import struct

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.errors import BadRequest
from nemo_server.transcription.app import create_app
from nemo_server.transcription.engines.fake import FakeAsr
from tests.transcription.conftest import tone_wav


def post(client: TestClient, headers: dict[str, str], data: bytes, name: str = "x.wav"):
    files = {"file": (name, data, "audio/wav")}
    return client.post("/v1/audio/transcriptions", headers=headers, files=files)


def riff(channels: int, rate: int, bits: int, data_size: int, payload: bytes) -> bytes:
    block = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", data_size) + payload
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + body


@pytest.mark.parametrize(
    "data",
    [
        riff(65535, 16_000, 16, 0xFFFFFFF0, b"\1\2" * 500),  # absurd channel count and size
        riff(1, 0, 16, 1000, b"\0" * 1000),  # zero sample rate
        riff(1, 16_000, 3, 1000, b"\0" * 1000),  # 3-bit samples
        b"OggS" + b"\0" * 23 + b"\xff" * 2000,  # an Ogg page header followed by junk
        b"\x1a\x45\xdf\xa3" + b"\x01\x42\x86\x81\x01" * 300,  # EBML (webm) garbage
        b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\xff\xfb" * 1000,  # huge ID3 tag, junk frames
    ],
)
def test_hostile_headers_get_4xx_and_the_service_keeps_working(client, headers, data):
    response = post(client, headers, data)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["param"] == "file"
    assert post(client, headers, tone_wav([0.2])).status_code == 200


def test_a_decoder_that_dies_or_hangs_is_a_400(make_client, settings, headers):
    starved = settings.model_copy(update={"decode_memory_mb": 256})
    with make_client(settings=starved) as client:
        response = post(client, headers, tone_wav([0.2, 0.3]))
        # Killed by its address-space limit (or not): never a 500.
        assert response.status_code in (200, 400)
    hurried = settings.model_copy(update={"decode_timeout_s": 0.001})
    with make_client(settings=hurried) as client:
        response = post(client, headers, tone_wav([0.2, 0.3]))
        assert response.status_code == 400
        assert "longer than" in response.json()["error"]["message"]


def test_decoder_pool_replaces_dead_and_hung_workers(tmp_path):
    from nemo_server.transcription.audio import DecodeLimits, DecoderPool, decode_file

    source = tmp_path / "a.wav"
    source.write_bytes(tone_wav([0.2, 0.3]))
    pool = DecoderPool(DecodeLimits(timeout_s=60), size=1)
    try:
        assert len(decode_file(source, pool)) == 32_000
        idle = pool._idle.queue[0]
        idle.process.kill()  # a worker dying between jobs costs nobody a request
        idle.process.wait()
        assert len(decode_file(source, pool)) == 32_000
        fifo = tmp_path / "hangs.wav"
        os.mkfifo(fifo)  # opening a FIFO nobody writes to blocks the decoder for ever
        pool.limits = DecodeLimits(timeout_s=1)
        with pytest.raises(BadRequest, match="longer than"):
            decode_file(fifo, pool)
        assert len(decode_file(source, pool)) == 32_000
    finally:
        pool.close()


def test_create_app_without_arguments_reads_the_environment(data_dir, monkeypatch, headers):
    monkeypatch.setenv("NEMO_TRANSCRIPTION_PRELOAD", "false")
    monkeypatch.setenv("NEMO_TRANSCRIPTION_MAX_SYNC_AUDIO_S", "1")
    app = create_app()
    assert app.state.settings.max_sync_audio_s == 1
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        # The bundled model is named; nothing was loaded yet and a long file is refused.
        ids = [m["id"] for m in client.get("/v1/audio/models", headers=headers).json()["data"]]
        assert ids == ["whisper-tiny.en"]
        assert post(client, headers, tone_wav([0.2, 0.3])).status_code == 413


def test_jobs_on_postgres(postgres_url, common_settings, headers, unique):
    import sqlalchemy as sa

    common = common_settings.model_copy(
        update={"database_url": postgres_url, "database_schema_prefix": f"t{unique}_"}
    )
    from nemo_server.transcription.settings import TranscriptionSettings

    settings = TranscriptionSettings(common=common, preload=False, job_chunk_s=5)
    try:
        with TestClient(create_app(settings, asr_engine=FakeAsr())) as client:
            files = {"file": ("a.wav", tone_wav([0.1, 0.2, 0.3] * 4), "audio/wav")}
            job = client.post("/v1/transcriptions/jobs", headers=headers, files=files).json()
            from tests.transcription.conftest import wait_for

            wait_for(
                lambda: (
                    client.get(f"/v1/transcriptions/jobs/{job['id']}", headers=headers).json()[
                        "status"
                    ]
                    == "completed"
                )
            )
            result = client.get(f"/v1/transcriptions/jobs/{job['id']}/result", headers=headers)
            assert result.json()["text"] == " ".join(["w10 w20 w30"] * 4)
    finally:
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "t{unique}_transcription" CASCADE'))
        engine.dispose()


def test_coordinator_mode_without_a_coordinator_is_a_503(make_client, settings, headers):
    common = settings.common.model_copy(
        update={"service_urls": {"coordinator": "http://127.0.0.1:9"}}
    )
    configured = settings.model_copy(update={"common": common, "gpu_leases": "coordinator"})
    with make_client(settings=configured, lease_client=None) as client:
        response = post(client, headers, tone_wav([0.2]))
        assert response.status_code == 503, response.text


def test_live_stream_reports_an_unreachable_coordinator(make_client, settings, headers):
    common = settings.common.model_copy(
        update={"service_urls": {"coordinator": "http://127.0.0.1:9"}}
    )
    configured = settings.model_copy(update={"common": common, "gpu_leases": "coordinator"})
    with make_client(settings=configured, lease_client=None) as client:
        with client.websocket_connect("/v1/audio/stream", headers=headers) as ws:
            assert ws.receive_json()["type"] == "ready"
            event = ws.receive_json()
            assert event["type"] == "error" and "coordinator" in event["message"]


def test_live_stream_needs_a_token(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/v1/audio/stream") as ws:
            ws.receive_json()
    assert closed.value.code == 4401
