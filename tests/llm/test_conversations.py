"""Conversations: per-user storage, and chat requests that append to them."""

from __future__ import annotations

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import BOB, internal_headers
from nemo_server.llm.app import create_app
from nemo_server.llm.engines.fake import FakeModel
from nemo_server.llm.settings import LlmSettings

CHAT = "/v1/chat/completions"


def test_create_list_get_delete(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(
        "/v1/conversations",
        headers=alice,
        json={"title": "Trip", "system_prompt": "You plan trips."},
    )
    assert r.status_code == 201
    conv = r.json()
    assert conv["id"].startswith("conv_") and conv["message_count"] == 1
    listed = client.get("/v1/conversations", headers=alice).json()["data"]
    assert [c["id"] for c in listed] == [conv["id"]]
    detail = client.get(f"/v1/conversations/{conv['id']}", headers=alice).json()
    assert detail["messages"][0]["role"] == "system"
    assert client.delete(f"/v1/conversations/{conv['id']}", headers=alice).status_code == 204
    assert client.get(f"/v1/conversations/{conv['id']}", headers=alice).status_code == 404
    assert client.get("/v1/conversations", headers=alice).json()["data"] == []


def test_chat_appends_and_uses_history(
    client: TestClient, alice: dict[str, str], fake: FakeModel
) -> None:
    conv = client.post("/v1/conversations", headers=alice, json={}).json()
    first = {"conversation_id": conv["id"], "messages": [{"role": "user", "content": "one"}]}
    r = client.post(CHAT, headers=alice, json=first)
    assert r.status_code == 200 and r.json()["conversation_id"] == conv["id"]
    second = {
        "conversation_id": conv["id"],
        "stream": True,
        "messages": [{"role": "user", "content": "two"}],
    }
    with client.stream("POST", CHAT, headers=alice, json=second) as s:
        assert s.read().decode().rstrip().endswith("data: [DONE]")
    # The second prompt carried the first exchange: "<user> one", reply, "<user> two".
    assert len(fake.requests[-1].prompt_tokens) > len(fake.requests[-2].prompt_tokens)
    detail = client.get(f"/v1/conversations/{conv['id']}", headers=alice).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "one"),
        ("assistant", "Hello from the fake model."),
        ("user", "two"),
        ("assistant", "Hello from the fake model."),
    ]
    assert detail["title"] == "one"


def test_conversations_are_private(
    client: TestClient, alice: dict[str, str], common_settings: CommonSettings
) -> None:
    bob = internal_headers(common_settings, BOB)
    conv = client.post("/v1/conversations", headers=alice, json={"title": "mine"}).json()
    assert client.get("/v1/conversations", headers=bob).json()["data"] == []
    assert client.get(f"/v1/conversations/{conv['id']}", headers=bob).status_code == 404
    assert client.delete(f"/v1/conversations/{conv['id']}", headers=bob).status_code == 404
    r = client.post(
        CHAT,
        headers=bob,
        json={"conversation_id": conv["id"], "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 404 and r.json()["error"]["param"] == "conversation_id"
    assert client.get(f"/v1/conversations/{conv['id']}", headers=alice).status_code == 200


@pytest.mark.integration
def test_conversations_on_postgres(
    postgres_url: str, unique: str, settings: LlmSettings, fake: FakeModel, alice: dict[str, str]
) -> None:
    prefix = f"t{unique}_"
    settings.common.database_url = postgres_url
    settings.common.database_schema_prefix = prefix
    try:
        with TestClient(create_app(settings, engine=fake)) as c:
            conv = c.post("/v1/conversations", headers=alice, json={"title": "pg"}).json()
            body = {"conversation_id": conv["id"], "messages": [{"role": "user", "content": "hi"}]}
            assert c.post(CHAT, headers=alice, json=body).status_code == 200
            detail = c.get(f"/v1/conversations/{conv['id']}", headers=alice).json()
            assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
            assert c.delete(f"/v1/conversations/{conv['id']}", headers=alice).status_code == 204
    finally:
        engine = sqlalchemy.create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{prefix}llm" CASCADE'))
        engine.dispose()


def test_a_conversation_keeps_its_model(client: TestClient, alice: dict[str, str]) -> None:
    conv = client.post("/v1/conversations", headers=alice, json={"model": "tiny-local"}).json()
    body = {"conversation_id": conv["id"], "messages": [{"role": "user", "content": "hi"}]}
    assert client.post(CHAT, headers=alice, json=body).json()["model"] == "tiny-local"
    body["model"] = "smollm2"
    assert client.post(CHAT, headers=alice, json=body).json()["model"] == "smollm2"
