"""Real engines on small inputs: a local transformers classifier, the NRC lexicon, VADER."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nemo_server.common.testing import internal_headers
from nemo_server.emotion.app import create_app
from nemo_server.emotion.engines.base import LABELS, build_text_engine
from nemo_server.emotion.engines.fake import FakeTranscriber
from nemo_server.emotion.engines.lexicon import NRCLexiconEngine
from nemo_server.emotion.engines.minilm_lora import base_model_path
from nemo_server.emotion.engines.transformers_local import TransformersEngine
from nemo_server.emotion.engines.vader import VaderSentiment
from nemo_server.emotion.settings import EmotionSettings


def build_tiny_classifier(path: Path, labels: list[str]) -> Path:
    """A 2-layer BERT classifier built from a config (random weights) with a real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    BertForSequenceClassification(config).save_pretrained(str(path))
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_path()), local_files_only=True)
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Capitalised and in another order than ours, as real emotion models label themselves.
    labels = ["Joy", "Anger", "Neutral", "Sadness", "Fear", "Surprise", "Disgust"]
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-emotion"), labels)


def test_transformers_engine_loads_a_local_model_and_scores_every_label(tiny_model) -> None:
    engine = TransformersEngine(tiny_model)
    scores = engine.classify(["I love this!", "short", "a somewhat longer sentence " * 30])
    assert len(scores) == 3
    for s in scores:
        assert set(s) == set(LABELS) and abs(sum(s.values()) - 1) < 1e-4
    assert engine.name == f"transformers/{tiny_model.name}"
    # Deterministic: the same text scores the same alone and in a batch.
    alone = engine.classify(["I love this!"])[0]
    assert all(abs(alone[k] - scores[0][k]) < 1e-4 for k in LABELS)


def test_transformers_engine_rejects_non_emotion_labels(tmp_path) -> None:
    path = build_tiny_classifier(tmp_path / "sentiment", ["negative", "positive"])
    with pytest.raises(ValueError, match="not Ekman emotions"):
        TransformersEngine(path)
    with pytest.raises(FileNotFoundError):
        TransformersEngine(tmp_path / "nothing-here")


def test_the_service_runs_on_the_transformers_engine(tiny_model, common_settings) -> None:
    settings = EmotionSettings(
        common=common_settings,
        text_engine="transformers",
        model_path=tiny_model,
        sentiment_engine="vader",  # the tiny model is untrained: its valence means nothing
    )
    app = create_app(settings, transcriber=FakeTranscriber({"segments": []}))
    with TestClient(app) as client:
        response = client.post(
            "/v1/emotion/text",
            json={"inputs": ["What a lovely day", "This is terrible"]},
            headers=internal_headers(common_settings),
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"].startswith("transformers/")
    assert [r["sentiment"]["label"] for r in body["results"]] == ["positive", "negative"]


def test_unknown_engine_or_missing_path_is_a_clear_error(common_settings) -> None:
    with pytest.raises(ValueError, match="unknown text engine"):
        build_text_engine(EmotionSettings(common=common_settings, text_engine="nope"))
    with pytest.raises(ValueError, match="MODEL_PATH"):
        build_text_engine(EmotionSettings(common=common_settings, text_engine="transformers"))


def test_lexicon_engine_finds_emotion_words() -> None:
    engine = NRCLexiconEngine()
    furious, calm, scared = engine.classify(
        [
            "I am furious and full of rage",
            "The table has four legs",
            "I was scared and afraid of the spider",
        ]
    )
    assert max(furious, key=furious.get) == "anger"
    assert calm["neutral"] == 1.0
    assert max(scared, key=scared.get) == "fear"


def test_vader_polarity() -> None:
    good, bad, flat = VaderSentiment().polarity(
        ["This is wonderful, thank you!", "I hate this awful mess", "The meeting is at 3"]
    )
    assert good > 0.5 and bad < -0.5 and flat == 0.0
