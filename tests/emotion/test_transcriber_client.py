"""The real transcription client: what it sends to `/v1/audio/transcriptions`."""

from __future__ import annotations

import httpx
import pytest

from nemo_server.common.auth import InternalTokenCodec
from nemo_server.common.clients import ServiceClient
from nemo_server.common.errors import ServiceUnavailable, Unprocessable
from nemo_server.common.testing import ALICE
from nemo_server.emotion.transcriber import TranscriptionServiceClient


def make(handler, codec: InternalTokenCodec) -> TranscriptionServiceClient:
    client = ServiceClient(
        "transcription", "http://transcription", codec, transport=httpx.MockTransport(handler)
    )
    return TranscriptionServiceClient(client)


@pytest.fixture
def codec(common_settings) -> InternalTokenCodec:
    return InternalTokenCodec(common_settings.secrets().get("internal_key"))


async def test_asks_for_verbose_json_with_diarization_as_the_user(codec) -> None:
    seen: dict = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.path
        seen["user"] = codec.verify(request.headers["authorization"].split()[1]).user_id
        seen["body"] = request.read()
        return httpx.Response(200, json={"text": "hi", "segments": []})

    client = make(handler, codec)
    result = await client.transcribe(ALICE, b"RIFFdata", "a.wav", "audio/wav", language="de")
    await client.aclose()
    assert result == {"text": "hi", "segments": []}
    assert seen["path"] == "/v1/audio/transcriptions" and seen["user"] == "u-alice"
    body = seen["body"]
    for field, value in (
        ("response_format", b"verbose_json"),
        ("diarize", b"true"),
        ("language", b"de"),
    ):
        assert f'name="{field}"'.encode() in body and value in body
    assert b'filename="a.wav"' in body and b"RIFFdata" in body


async def test_upstream_errors_keep_their_status_and_field(codec) -> None:
    def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422, json={"error": {"message": "language: unknown", "param": "language"}}
        )

    client = make(bad, codec)
    with pytest.raises(Unprocessable) as info:
        await client.transcribe(ALICE, b"x", "a.wav", "audio/wav", language="xx")
    assert info.value.param == "language"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ServiceUnavailable):
        await make(down, codec).transcribe(ALICE, b"x", "a.wav", "audio/wav")
