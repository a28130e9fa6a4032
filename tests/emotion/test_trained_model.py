"""The shipped trained model (bundled MiniLM + the project's adapters), loaded once per module."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.testing import internal_headers
from nemo_server.emotion.app import create_app
from nemo_server.emotion.engines.minilm_lora import (
    MiniLMLoRAEngine,
    base_model_sha256,
    default_weights_path,
    read_adapter_config,
)

pytestmark = pytest.mark.slow

CLEAR_CASES = {
    "I am so happy and grateful, this is wonderful!": "joy",
    "This makes me so angry, I am furious with them.": "anger",
    "I miss her so much, I cried all night.": "sadness",
    "I'm terrified of what might happen tomorrow.": "fear",
    "Wow, I did not expect that at all!": "surprise",
    "That is disgusting, absolutely gross.": "disgust",
    "The meeting is on Tuesday at noon.": "neutral",
}


@pytest.fixture(scope="module")
def engine() -> MiniLMLoRAEngine:
    return MiniLMLoRAEngine()


def test_shipped_weights_are_small_and_match_the_bundled_base() -> None:
    weights = default_weights_path()
    assert weights.is_file() and weights.stat().st_size < 5_000_000
    config = read_adapter_config(weights)
    assert config["base_sha256"] == base_model_sha256()
    assert config["labels"] == [
        "anger",
        "disgust",
        "fear",
        "joy",
        "neutral",
        "sadness",
        "surprise",
    ]


def test_clear_sentences_get_their_emotion(engine) -> None:
    texts = list(CLEAR_CASES)
    scores = engine.classify(texts)
    predicted = {t: max(s, key=s.get) for t, s in zip(texts, scores, strict=True)}
    assert predicted == CLEAR_CASES
    for s in scores:
        assert abs(sum(s.values()) - 1) < 1e-4


def test_a_text_scores_the_same_alone_and_in_a_batch(engine) -> None:
    batch = engine.classify(["ok", "I can't believe how amazing this is " * 20, "meh"])
    alone = engine.classify(["I can't believe how amazing this is " * 20])[0]
    assert all(abs(alone[k] - batch[1][k]) < 1e-4 for k in alone)


def test_create_app_with_no_arguments_serves_the_trained_model(data_dir) -> None:
    app = create_app()
    settings = app.state.settings
    with TestClient(app) as client:
        headers = internal_headers(settings.common)
        response = client.post(
            "/v1/emotion/text",
            json={"inputs": ["I love you all, best day ever!", "I hate this, it's awful."]},
            headers=headers,
        )
        info = client.get("/v1/emotion/model", headers=headers).json()
        assert client.get("/readyz").status_code == 200
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["label"] == "joy" and results[0]["sentiment"]["label"] == "positive"
    assert results[1]["label"] in ("anger", "disgust")
    assert results[1]["sentiment"]["label"] == "negative"
    assert info["text_engine"] == "minilm-lora" and info["sentiment_engine"] == "model"
    metrics = info["card"]["metrics"]
    assert metrics["dev_with_offsets"]["macro_f1"] > 0.5
