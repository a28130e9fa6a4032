"""Secrets: mounted files win; otherwise generated once with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nemo_server.common.settings import CommonSettings


def test_generated_secret_is_private_and_stable(common_settings: CommonSettings) -> None:
    secrets = common_settings.secrets()
    first = secrets.get("jwt_key")
    path = common_settings.data_dir / "secrets" / "jwt_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64
    assert secrets.get("jwt_key") == first
    assert secrets.get("db_key") != first


def test_mounted_secret_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    mounted = tmp_path / "run-secrets"
    mounted.mkdir()
    (mounted / "jwt_key").write_text("k" * 40 + "\n")
    monkeypatch.setenv("NEMO_SECRETS_DIR", str(mounted))
    assert CommonSettings().secrets().get("jwt_key") == "k" * 40


def test_service_urls_and_port_offset(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("NEMO_SERVICE_URLS", '{"llm": "http://llm:8001/"}')
    monkeypatch.setenv("NEMO_PORT_OFFSET", "100")
    settings = CommonSettings()
    assert settings.url_for("llm") == "http://llm:8001"
    assert settings.url_for("rag") == "http://127.0.0.1:8104"
