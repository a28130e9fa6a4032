"""Fixtures shared by every test: an isolated data dir, settings, and real Redis/PostgreSQL."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing may reach a model hub from a test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from nemo_server.common.settings import CommonSettings

REDIS_URL = os.environ.get("NEMO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "NEMO_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{service} is not reachable on {host}:{port}"
    if os.environ.get("NEMO_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and NEMO_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh NEMO_DATA_DIR for one test; service env vars from the host are cleared."""
    for key in list(os.environ):
        if (
            key.startswith("NEMO_")
            and key not in ("NEMO_REQUIRE_SERVICES",)
            and not key.startswith("NEMO_TEST_")
        ):
            monkeypatch.delenv(key, raising=False)
    path = tmp_path / "nemo-data"
    monkeypatch.setenv("NEMO_DATA_DIR", str(path))
    monkeypatch.setenv("NEMO_SECRETS_DIR", str(tmp_path / "no-mounted-secrets"))
    return path


@pytest.fixture
def common_settings(data_dir: Path) -> CommonSettings:
    return CommonSettings()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis (database 15), flushed before and after the test."""
    _need("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL database; each test gets its own schemas, dropped afterwards."""
    _need("PostgreSQL", "127.0.0.1", 5432)
    yield POSTGRES_URL


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
