"""The OpenAI-compatible API over a fake model: shapes, streaming, limits, errors."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from nemo_server.common.auth import SYSTEM_PRINCIPAL
from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import internal_headers
from nemo_server.llm.engines.base import RequestPriority
from nemo_server.llm.engines.fake import FakeModel

CHAT = "/v1/chat/completions"


def _chat(**kw: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hello there"}], **kw}


def _events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_models_lists_bundled_and_models_dir(client: TestClient, alice: dict[str, str]) -> None:
    r = client.get("/v1/models", headers=alice)
    assert r.status_code == 200
    ids = {m["id"] for m in r.json()["data"]}
    assert {"smollm2", "gemma3-270m", "tiny-local"} <= ids
    assert r.json()["object"] == "list"
    assert client.get("/v1/models/smollm2", headers=alice).json()["loaded"] is False
    missing = client.get("/v1/models/nope", headers=alice)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"


def test_every_route_needs_the_internal_token(client: TestClient) -> None:
    r = client.post(CHAT, json=_chat())
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"


def test_chat_completion_whole(client: TestClient, alice: dict[str, str], fake: FakeModel) -> None:
    r = client.post(CHAT, headers=alice, json=_chat(temperature=0.2, top_p=0.9, seed=7))
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "smollm2"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello from the fake model."}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    sampling = fake.requests[-1].sampling
    assert (sampling.temperature, sampling.top_p, sampling.seed) == (0.2, 0.9, 7)
    assert fake.requests[-1].priority == RequestPriority.INTERACTIVE


def test_chat_stream_is_sse_ending_with_done(client: TestClient, alice: dict[str, str]) -> None:
    payload = _chat(stream=True, stream_options={"include_usage": True})
    with client.stream("POST", CHAT, headers=alice, json=payload) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello from the fake model."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_max_tokens_and_stop(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(CHAT, headers=alice, json=_chat(max_tokens=2))
    assert r.json()["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello from"},
        "logprobs": None,
        "finish_reason": "length",
    }
    r = client.post(CHAT, headers=alice, json=_chat(stop=[" the"]))
    assert r.json()["choices"][0]["message"]["content"] == "Hello from"
    assert r.json()["choices"][0]["finish_reason"] == "stop"


def test_text_completion_whole_and_streamed(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post("/v1/completions", headers=alice, json={"prompt": "Say", "echo": True})
    assert r.status_code == 200
    assert r.json()["object"] == "text_completion"
    assert r.json()["choices"][0]["text"] == "SayHello from the fake model."
    with client.stream(
        "POST", "/v1/completions", headers=alice, json={"prompt": "Say", "stream": True}
    ) as s:
        events = _events(s.read().decode())
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
    assert text == "Hello from the fake model."


def test_unknown_model_is_404(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(CHAT, headers=alice, json=_chat(model="gpt-99"))
    assert r.status_code == 404
    err = r.json()["error"]
    assert (err["param"], err["code"]) == ("model", "model_not_found")
    assert "gpt-99" in err["message"]


def test_prompt_over_the_context_is_400_with_counts(
    client: TestClient, alice: dict[str, str]
) -> None:
    long = " ".join(["word"] * 80)  # the fake model's context is 64 tokens
    r = client.post(CHAT, headers=alice, json={"messages": [{"role": "user", "content": long}]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded"
    assert err["prompt_tokens"] == 82 and err["context_length"] == 64
    r = client.post(CHAT, headers=alice, json=_chat(max_tokens=100))
    assert r.status_code == 400
    assert r.json()["error"]["max_tokens"] == 100


def test_json_schema_response_format(
    client: TestClient, alice: dict[str, str], fake: FakeModel
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    r = client.post(CHAT, headers=alice, json=_chat(response_format=fmt))
    assert r.status_code == 200
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"answer": "fake"}
    assert fake.requests[-1].sampling.grammar
    bad = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "banana"}}}
    r = client.post(CHAT, headers=alice, json=_chat(response_format=bad))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "response_format.json_schema"


def test_bad_requests_name_the_field(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(CHAT, headers=alice, json={"messages": []})
    assert r.status_code == 422 and r.json()["error"]["param"] == "messages"
    r = client.post(CHAT, headers=alice, json=_chat(temperature=5))
    assert r.status_code == 422 and r.json()["error"]["param"] == "temperature"
    r = client.post(CHAT, headers=alice, json=_chat(n=3))
    assert r.status_code == 422 and r.json()["error"]["param"] == "n"
    r = client.post(CHAT, headers={**alice, "X-Nemo-Priority": "urgent"}, json=_chat())
    assert r.status_code == 400 and r.json()["error"]["param"] == "x-nemo-priority"
    ends_with_assistant = {"messages": [{"role": "assistant", "content": "hi"}]}
    r = client.post(CHAT, headers=alice, json=ends_with_assistant)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = client.post("/v1/completions", headers=alice, json={"prompt": ["a", "b"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    r = client.post("/v1/completions", headers=alice, json={"prompt": "   "})
    assert r.status_code == 400


def test_background_priority_from_header_and_service_callers(
    client: TestClient, alice: dict[str, str], fake: FakeModel, common_settings: CommonSettings
) -> None:
    client.post(CHAT, headers={**alice, "X-Nemo-Priority": "background"}, json=_chat())
    assert fake.requests[-1].priority == RequestPriority.BACKGROUND
    client.post(CHAT, headers=internal_headers(common_settings, SYSTEM_PRINCIPAL), json=_chat())
    assert fake.requests[-1].priority == RequestPriority.BACKGROUND


def test_metrics_count_tokens(client: TestClient, alice: dict[str, str]) -> None:
    client.post(CHAT, headers=alice, json=_chat())
    text = client.get("/metrics").text
    assert 'nemo_llm_completion_tokens_total{model="smollm2"} 5.0' in text
    assert 'nemo_llm_generations_total{finish_reason="stop",model="smollm2"} 1.0' in text
    assert "nemo_llm_time_to_first_token_seconds_count" in text
