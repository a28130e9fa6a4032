"""The benchmark's scoring: WER normalisation and DER (overlap scored, no collar)."""

from __future__ import annotations

import pytest

from nemo_server.transcription.der import diarization_error, parse_rttm
from nemo_server.transcription.engines.base import Turn
from nemo_server.transcription.formats import rttm
from nemo_server.transcription.wer import word_error_rate


def test_wer_ignores_case_punctuation_and_digit_spelling():
    assert word_error_rate("Meet at nine, OK?", "meet at 9 ok") == 0.0
    assert word_error_rate("one two three four", "one too three") == pytest.approx(0.5)


def test_der_counts_miss_false_alarm_and_confusion_with_label_mapping():
    reference = [(0.0, 4.0, "A"), (4.0, 8.0, "B"), (6.0, 8.0, "A")]  # 2 s of overlap
    perfect = [(0.0, 4.0, "x"), (4.0, 8.0, "y"), (6.0, 8.0, "x")]
    assert diarization_error(reference, perfect).der == pytest.approx(0.0)
    no_overlap = [(0.0, 4.0, "x"), (4.0, 8.0, "y")]
    scored = diarization_error(reference, no_overlap)
    assert scored.missed == pytest.approx(2.0) and scored.der == pytest.approx(0.2)
    swapped = [(0.0, 4.0, "y"), (4.0, 8.0, "y")]
    scored = diarization_error(reference, swapped)
    assert scored.confusion == pytest.approx(2.0) and scored.missed == pytest.approx(2.0)
    extra = [*perfect, (8.0, 9.0, "x")]
    assert diarization_error(reference, extra).false_alarm == pytest.approx(1.0)


def test_rttm_round_trips():
    turns = [Turn(0.5, 1.25, "SPEAKER_00"), Turn(1.0, 2.0, "SPEAKER_01")]
    assert parse_rttm(rttm(turns, "my file.wav")) == [
        (0.5, 1.25, "SPEAKER_00"),
        (1.0, 2.0, "SPEAKER_01"),
    ]
