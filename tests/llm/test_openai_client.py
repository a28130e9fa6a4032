"""The official `openai` package against the gateway in front of the service (both under
uvicorn in threads, real SmolLM2), authenticated with an API key as any OpenAI client would be.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ADMIN, ALICE, ServerThread, internal_headers
from nemo_server.gateway.app import create_app as create_gateway
from nemo_server.gateway.settings import GatewaySettings
from nemo_server.llm.app import create_app
from nemo_server.llm.settings import LlmSettings

pytestmark = pytest.mark.slow


def _cancelled(http: httpx.Client) -> float:
    """Generations that ended because their client left (not by length or stop)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('nemo_llm_generations_total{finish_reason="cancelled",model="smollm2"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LlmSettings]]:
    """The LLM service, directly (for admin status checks)."""
    root: Path = tmp_path_factory.mktemp("llm-openai")
    (root / "secrets").mkdir()
    (root / "secrets" / "admin_password").write_text("admin-password-123")
    common = CommonSettings(data_dir=root / "data", secrets_dir=root / "secrets")
    settings = LlmSettings(common=common, parallel_slots=2, context_per_slot=512, threads=1)
    with ServerThread(create_app(settings)) as llm:
        yield llm.url, settings


@pytest.fixture(scope="module")
def gateway(server: tuple[str, LlmSettings]) -> Iterator[tuple[str, str]]:
    """The gateway routing to that service, and an API key of a plain user."""
    url, settings = server
    common = settings.common.model_copy(update={"service_urls": {"llm": url}})
    with ServerThread(create_gateway(GatewaySettings(common=common))) as gw:
        http = httpx.Client(base_url=gw.url, timeout=30)
        admin = http.post(
            "/v1/auth/token", data={"username": "admin", "password": "admin-password-123"}
        )
        auth = {"Authorization": f"Bearer {admin.json()['access_token']}"}
        user = {"username": "alice", "password": "alice-password"}
        assert http.post("/v1/admin/users", json=user, headers=auth).status_code == 201
        token = http.post("/v1/auth/token", data=user).json()["access_token"]
        key = http.post(
            "/v1/api-keys", json={"name": "openai"}, headers={"Authorization": f"Bearer {token}"}
        ).json()["key"]
        http.close()
        yield gw.url, key


@pytest.fixture
def client(gateway: tuple[str, str]) -> openai.OpenAI:
    url, key = gateway
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "smollm2" in ids and "gemma3-270m" in ids


def test_chat_whole_and_streamed(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Say hello."}]
    whole = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=8, temperature=0.5, top_p=0.9, seed=3
    )
    again = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=8, temperature=0.5, top_p=0.9, seed=3
    )
    assert whole.choices[0].message.content == again.choices[0].message.content
    assert whole.usage is not None and 0 < whole.usage.completion_tokens <= 8
    stream = client.chat.completions.create(
        model="smollm2",
        messages=messages,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_text_completion_with_stop(client: openai.OpenAI) -> None:
    result = client.completions.create(
        model="smollm2", prompt="One, two, three,", max_tokens=10, stop=["\n"], temperature=0
    )
    assert "\n" not in result.choices[0].text
    assert result.choices[0].finish_reason in ("stop", "length")


def test_json_schema_response_format(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["answer"],
    }
    result = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Is the sky blue? Answer in JSON."}],
        max_tokens=30,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert json.loads(result.choices[0].message.content or "")["answer"] in ("yes", "no")


def test_errors_come_back_as_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "word " * 600}]
        )
    assert too_long.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    assert too_long.value.body["context_length"] == 512  # type: ignore[index]


def test_client_disconnect_frees_the_slot(
    server: tuple[str, LlmSettings], gateway: tuple[str, str]
) -> None:
    """A client that hangs up on the gateway mid-stream frees its slot in the service."""
    url, settings = server
    gateway_url, key = gateway
    admin = internal_headers(settings.common, ADMIN)
    body = {
        "model": "smollm2",
        "stream": True,
        "max_tokens": 400,
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": {"type": "string", "minLength": 2000}},
        },
    }
    with httpx.Client(base_url=url, timeout=30) as http, httpx.Client(timeout=30) as client:
        before = _cancelled(http)
        with client.stream(
            "POST",
            f"{gateway_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json=body,
        ) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            status = http.get("/v1/llm/status", headers=admin).json()
            assert status["loaded"][0]["active"] == 1
        # The response is closed mid-stream: the slot is freed without waiting for 400 tokens.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            loaded = http.get("/v1/llm/status", headers=admin).json()["loaded"][0]
            if loaded["active"] == 0 and loaded["in_use"] == 0:
                break
            time.sleep(0.05)
        assert (loaded["active"], loaded["in_use"]) == (0, 0)
        assert _cancelled(http) == before + 1  # ended early, not after its 400 tokens


def test_a_client_gone_before_a_whole_answer_frees_the_slot(
    server: tuple[str, LlmSettings],
) -> None:
    url, settings = server
    admin = internal_headers(settings.common, ADMIN)
    body = {
        "model": "smollm2",
        "max_tokens": 400,
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": {"type": "string", "minLength": 2000}},
        },
    }
    with httpx.Client(base_url=url, timeout=30) as http:
        before = _cancelled(http)
        with pytest.raises(httpx.ReadTimeout):
            http.post(
                "/v1/chat/completions",
                headers=internal_headers(settings.common, ALICE),
                json=body,
                timeout=httpx.Timeout(30, read=1.0),
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            loaded = http.get("/v1/llm/status", headers=admin).json()["loaded"][0]
            if loaded["active"] == 0 and loaded["in_use"] == 0:
                break
            time.sleep(0.05)
        assert (loaded["active"], loaded["in_use"]) == (0, 0)
        assert _cancelled(http) == before + 1  # ended early, not after its 400 tokens
