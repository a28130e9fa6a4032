"""Engine protocols and the registry of text-emotion engine builders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nemo_server.emotion.metrics import EKMAN_LABELS

if TYPE_CHECKING:
    from nemo_server.emotion.settings import EmotionSettings

LABELS: tuple[str, ...] = EKMAN_LABELS


@runtime_checkable
class TextEmotionEngine(Protocol):
    """Scores texts over the seven Ekman labels (anger ... surprise, with neutral)."""

    name: str
    """A name for responses and logs (which model answered)."""

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One probability per label for each text (each dict sums to about 1)."""
        ...

    def info(self) -> dict | None:
        """The model card (training data, method, metrics) when the engine has one."""
        ...


@runtime_checkable
class SentimentEngine(Protocol):
    """Polarity of texts."""

    name: str

    def polarity(self, texts: Sequence[str]) -> list[float]:
        """A score per text from -1 (negative) to 1 (positive)."""
        ...


def _minilm(settings: EmotionSettings) -> TextEmotionEngine:
    from nemo_server.emotion.engines.minilm_lora import MiniLMLoRAEngine

    return MiniLMLoRAEngine(settings.weights_path, threads=settings.torch_threads)


def _transformers(settings: EmotionSettings) -> TextEmotionEngine:
    from nemo_server.emotion.engines.transformers_local import TransformersEngine

    if settings.model_path is None:
        raise ValueError("NEMO_EMOTION_MODEL_PATH must name a model directory for `transformers`")
    return TransformersEngine(settings.model_path, threads=settings.torch_threads)


def _lexicon(settings: EmotionSettings) -> TextEmotionEngine:
    from nemo_server.emotion.engines.lexicon import NRCLexiconEngine

    return NRCLexiconEngine()


TEXT_ENGINES: dict[str, Callable[[EmotionSettings], TextEmotionEngine]] = {
    "minilm-lora": _minilm,
    "transformers": _transformers,
    "lexicon": _lexicon,
}


def build_text_engine(settings: EmotionSettings) -> TextEmotionEngine:
    """The text engine the settings name (ValueError for an unknown one)."""
    try:
        builder = TEXT_ENGINES[settings.text_engine]
    except KeyError:
        known = ", ".join(sorted(TEXT_ENGINES))
        raise ValueError(f"unknown text engine {settings.text_engine!r}; one of {known}") from None
    return builder(settings)


def build_sentiment_engine(settings: EmotionSettings) -> SentimentEngine | None:
    """VADER (for `vader` and `blend`), or None when sentiment comes from the emotion scores."""
    if settings.sentiment_engine in ("vader", "blend"):
        from nemo_server.emotion.engines.vader import VaderSentiment

        return VaderSentiment()
    return None
