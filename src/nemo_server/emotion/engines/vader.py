"""Sentiment with VADER (lexicon and rules; fast, tuned on social-media text)."""

from __future__ import annotations

from collections.abc import Sequence


class VaderSentiment:
    """VADER's compound score as the polarity."""

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def polarity(self, texts: Sequence[str]) -> list[float]:
        return [float(self._analyzer.polarity_scores(t)["compound"]) for t in texts]
