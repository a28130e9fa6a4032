"""A lexicon engine: NRC emotion word counts mapped to the Ekman labels (fast, weak baseline).

NRCLex's own tokenizer needs NLTK corpora that cannot be installed offline, so texts are
tokenised and lemmatised with simplemma and passed to `load_token_list`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nemo_server.emotion.engines.base import LABELS

_WORD = re.compile(r"[a-z']+")
_NRC_TO_EKMAN = {
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "joy": "joy",
    "sadness": "sadness",
    "surprise": "surprise",
}


class NRCLexiconEngine:
    """Counts NRC emotion words; a text with none is neutral."""

    name = "nrc-lexicon"

    def __init__(self) -> None:
        import simplemma
        from nrclex import NRCLex

        self._lemmatize = simplemma.lemmatize
        self._lexicon = NRCLex().__lexicon__

    def _counts(self, text: str) -> dict[str, float]:
        counts = dict.fromkeys(LABELS, 0.0)
        for token in _WORD.findall(text.lower()):
            # The word as written first, then its lemma ("scared" is only listed as "scare").
            for word in (token, self._lemmatize(token, lang="en")):
                for emotion in self._lexicon.get(word, ()):
                    if emotion in _NRC_TO_EKMAN:
                        counts[_NRC_TO_EKMAN[emotion]] += 1.0
                if word in self._lexicon:
                    break
        return counts

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            counts = self._counts(text)
            total = sum(counts.values())
            if total == 0:
                out.append({label: float(label == "neutral") for label in LABELS})
                continue
            # Half a count of neutral keeps single weak cues from sounding certain.
            counts["neutral"] = 0.5
            total += 0.5
            out.append({label: counts[label] / total for label in LABELS})
        return out

    def info(self) -> dict | None:
        return {"method": "NRC emotion lexicon word counts (nrclex), lemmatised with simplemma"}
