"""POST /v1/emotion/text with fake engines: shape, sentiment, validation, auth, storage."""

from __future__ import annotations

from nemo_server.common.testing import ALICE, BOB, internal_headers
from nemo_server.emotion.engines.fake import FakeTextEngine

LABELS = {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}


def test_batch_gets_label_scores_and_sentiment_per_text(make_client, settings) -> None:
    client = make_client()
    response = client.post(
        "/v1/emotion/text",
        json={"inputs": ["I am so happy!", "I am furious at this.", "The bus comes at nine."]},
        headers=internal_headers(settings.common, ALICE),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "fake-keywords"
    results = body["results"]
    assert [r["label"] for r in results] == ["joy", "anger", "neutral"]
    assert all(set(r["scores"]) == LABELS for r in results)
    assert [r["sentiment"]["label"] for r in results] == ["positive", "negative", "neutral"]
    assert results[0]["sentiment"]["score"] > 0 > results[1]["sentiment"]["score"]


def test_a_single_string_is_a_batch_of_one(make_client, settings) -> None:
    client = make_client()
    response = client.post(
        "/v1/emotion/text",
        json={"inputs": "so scared"},
        headers=internal_headers(settings.common),
    )
    assert response.status_code == 200
    assert [r["label"] for r in response.json()["results"]] == ["fear"]


def test_model_sentiment_comes_from_emotion_scores(make_client, settings) -> None:
    client = make_client(sentiment_engine=None)
    response = client.post(
        "/v1/emotion/text",
        json={"inputs": ["happy happy", "so sad"]},
        headers=internal_headers(settings.common),
    )
    sentiments = [r["sentiment"]["label"] for r in response.json()["results"]]
    assert sentiments == ["positive", "negative"]


def test_bad_input_is_422_naming_the_field(make_client, settings) -> None:
    engine = FakeTextEngine()
    client = make_client(settings=settings.model_copy(update={"max_batch": 3}), text_engine=engine)
    headers = internal_headers(settings.common)

    def error(body: dict) -> dict:
        response = client.post("/v1/emotion/text", json=body, headers=headers)
        assert response.status_code == 422, response.text
        return response.json()["error"]

    assert error({"inputs": []})["param"] == "inputs"
    too_many = error({"inputs": ["a", "b", "c", "d"]})
    assert too_many["param"] == "inputs" and "limit of 3" in too_many["message"]
    empty = error({"inputs": ["fine", "   "]})
    assert empty["param"] == "inputs[1]" and "empty" in empty["message"]
    assert error({"inputs": ["x" * 6000]})["param"] == "inputs[0]"
    assert error({"inputs": ["a", "b"], "ids": ["1"]})["param"] == "ids"
    assert error({"texts": ["a"]})["param"] == "inputs"
    assert error({"inputs": [1, 2]})["param"].startswith("inputs")
    assert engine.calls == []  # nothing reached the model


def test_requests_need_the_internal_token(make_client) -> None:
    client = make_client()
    response = client.post("/v1/emotion/text", json={"inputs": ["hi"]})
    assert response.status_code == 401
    assert client.get("/healthz").status_code == 200


def test_results_are_stored_per_user_and_can_be_deleted(make_client, settings) -> None:
    client = make_client()
    alice, bob = internal_headers(settings.common, ALICE), internal_headers(settings.common, BOB)
    client.post(
        "/v1/emotion/text",
        json={"inputs": ["so sad", "happy now"], "source_id": "conv-1", "ids": ["m1", "m2"]},
        headers=alice,
    )
    client.post("/v1/emotion/text", json={"inputs": ["wow"], "store": False}, headers=alice)
    client.post("/v1/emotion/text", json={"inputs": ["gross"], "source_id": "b"}, headers=bob)

    mine = client.get("/v1/emotion/results", headers=alice).json()
    assert [(r["item_id"], r["label"]) for r in mine["data"]] == [("m1", "sadness"), ("m2", "joy")]
    assert mine["data"][0]["source_id"] == "conv-1" and mine["data"][0]["kind"] == "text"
    assert mine["data"][1]["sentiment"]["label"] == "positive"
    assert mine["has_more"] is False
    page = client.get("/v1/emotion/results?limit=1", headers=alice).json()
    assert len(page["data"]) == 1 and page["has_more"] is True

    theirs = client.get("/v1/emotion/results", headers=bob).json()["data"]
    assert [r["text"] for r in theirs] == ["gross"]

    gone = client.request("DELETE", "/v1/emotion/results?source_id=conv-1", headers=alice)
    assert gone.json() == {"deleted": 2}
    assert client.get("/v1/emotion/results", headers=alice).json()["data"] == []
    assert len(client.get("/v1/emotion/results", headers=bob).json()["data"]) == 1


def test_results_query_is_validated(make_client, settings) -> None:
    client = make_client()
    response = client.get("/v1/emotion/results?limit=0", headers=internal_headers(settings.common))
    assert response.status_code == 422 and response.json()["error"]["param"] == "limit"
    response = client.get(
        "/v1/emotion/results?kind=video", headers=internal_headers(settings.common)
    )
    assert response.status_code == 422 and response.json()["error"]["param"] == "kind"


def test_model_info_names_engines(make_client, settings) -> None:
    client = make_client()
    info = client.get("/v1/emotion/model", headers=internal_headers(settings.common)).json()
    assert info["model"] == "fake-keywords" and info["sentiment_engine"] == "fake-sentiment"
    assert set(info["labels"]) == LABELS


def test_overlong_ids_are_rejected_before_storage(make_client, settings) -> None:
    client = make_client()
    response = client.post(
        "/v1/emotion/text",
        json={"inputs": ["hi"], "ids": ["x" * 201]},
        headers=internal_headers(settings.common),
    )
    assert response.status_code == 422 and response.json()["error"]["param"] == "ids.0"


def test_blend_sentiment_averages_vader_and_the_model(make_client, settings) -> None:
    client = make_client(settings=settings.model_copy(update={"sentiment_engine": "blend"}))
    headers = internal_headers(settings.common)
    results = client.post(
        "/v1/emotion/text", json={"inputs": ["happy", "so sad", "a chair"]}, headers=headers
    ).json()["results"]
    assert [r["sentiment"]["label"] for r in results] == ["positive", "negative", "neutral"]
    # fake VADER says 0.8, the fake model's valence is 0.7 - 4 * 0.05 = 0.5
    assert abs(results[0]["sentiment"]["score"] - 0.65) < 1e-3
    info = client.get("/v1/emotion/model", headers=headers).json()
    assert info["sentiment_engine"] == "blend(fake-sentiment+model)"
