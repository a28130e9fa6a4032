"""Fixtures of the transcription tests: settings, apps with fake engines, synthetic audio."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ALICE, internal_headers
from nemo_server.transcription.app import create_app
from nemo_server.transcription.engines.fake import FakeAsr, FakeDiarizer
from nemo_server.transcription.settings import TranscriptionSettings
from nemo_server.transcription.testing import wav_bytes


def tones(levels: list[float], word_s: float = 0.5, gap_s: float = 0.5) -> np.ndarray:
    """One tone burst per level (the fake ASR hears each as the word `w<level*100>`)."""
    t = np.arange(int(word_s * 16_000)) / 16_000
    parts = []
    for level in levels:
        parts.append((level * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        parts.append(np.zeros(int(gap_s * 16_000), dtype=np.float32))
    return np.concatenate(parts)


def tone_wav(levels: list[float]) -> bytes:
    return wav_bytes(tones(levels))


@pytest.fixture
def settings(common_settings: CommonSettings) -> TranscriptionSettings:
    return TranscriptionSettings(common=common_settings, preload=False, job_chunk_s=5)


@pytest.fixture
def headers(common_settings: CommonSettings) -> dict[str, str]:
    return internal_headers(common_settings, ALICE)


@pytest.fixture
def make_client(settings: TranscriptionSettings) -> Callable[..., Any]:
    """`with make_client(**collaborators) as client:` a TestClient over fakes by default."""

    @contextmanager
    def make(**kw: Any) -> Iterator[TestClient]:
        kw.setdefault("asr_engine", FakeAsr())
        kw.setdefault("diarizer", FakeDiarizer())
        kw.setdefault("embedder", FakeDiarizer())
        app = create_app(kw.pop("settings", settings), **kw)
        with TestClient(app) as client:
            yield client

    return make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Iterator[TestClient]:
    with make_client() as client:
        yield client


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll until `predicate()` is truthy (no timing assertion: a generous ceiling only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
