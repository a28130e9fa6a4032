"""Settings of the emotion service (env prefix `NEMO_EMOTION_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings


class EmotionSettings(ServiceSettings):
    """Everything the emotion service reads at start."""

    model_config = SettingsConfigDict(env_prefix="NEMO_EMOTION_", extra="ignore")

    text_engine: str = Field(
        default="minilm-lora",
        description="Text emotion engine: `minilm-lora` (the project's trained model over the "
        "bundled all-MiniLM-L6-v2), `transformers` (a sequence classifier from `model_path`) "
        "or `lexicon` (NRC emotion lexicon; fast, weak).",
    )
    model_path: Path | None = Field(
        default=None,
        description="`transformers` engine: a local model directory (config, weights, tokenizer), "
        "e.g. a DistilRoBERTa emotion model; its labels must be Ekman emotion names.",
    )
    weights_path: Path | None = Field(
        default=None,
        description="`minilm-lora` engine: an adapter file to use instead of the shipped one "
        "(written by `python -m nemo_server.emotion.training.train --out ...`).",
    )
    sentiment_engine: Literal["vader", "model", "blend"] = Field(
        default="model",
        description="Sentiment: `model` (joy minus the negative emotions of the text engine's "
        "scores; best on GoEmotions dev), `vader` (lexicon and rules) or `blend` (their mean).",
    )
    max_batch: int = Field(
        default=64, ge=1, le=4096, description="Most texts one `POST /v1/emotion/text` may carry."
    )
    max_text_chars: int = Field(
        default=5000,
        ge=1,
        description="Longest text accepted (the model reads its first ~64 tokens).",
    )
    torch_threads: int = Field(
        default=0, ge=0, description="CPU threads for the model (0: torch's default)."
    )
    max_body_bytes: int = Field(
        default=50 << 20,
        ge=1024,
        description="Largest request body (audio uploads), 413 beyond it.",
    )
    max_audio_seconds: float = Field(
        default=1800.0, gt=0, description="Longest audio accepted by `POST /v1/emotion/audio`."
    )
    transcription_timeout_s: float = Field(
        default=600.0, gt=0, description="How long to wait for the transcription service."
    )
    store_by_default: bool = Field(
        default=True,
        description="Store results per user when a request does not say (`store` field).",
    )
