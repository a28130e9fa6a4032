"""Settings shared by every service, and the secrets they read.

Every service has its own settings class (env prefix `NEMO_<SERVICE>_`) holding a
`CommonSettings` (env prefix `NEMO_`). Settings are validated once, when an app is built.
"""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nemo_server.common.services import SERVICES


def default_data_dir() -> Path:
    return Path.home() / ".nemo"


class CommonSettings(BaseSettings):
    """Settings every service reads (env prefix `NEMO_`)."""

    model_config = SettingsConfigDict(env_prefix="NEMO_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where databases, secrets, logs and indexes live (`NEMO_DATA_DIR`).",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (`postgresql+psycopg://...`); unset means SQLCipher files in the data dir.",
    )
    database_schema_prefix: str = Field(
        default="nemo_",
        description="PostgreSQL only: each service's schema is this prefix plus its name.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL; set, it holds rate limits, GPU leases and queues shared by replicas.",
    )
    secrets_dir: Path = Field(
        default=Path("/run/secrets"),
        description="Secrets mounted by Docker or Kubernetes; read before the data dir's own secrets.",
    )
    service_urls: dict[str, str] = Field(
        default_factory=dict,
        description='Base URL per service, JSON (`{"llm": "http://llm:8001"}`); default 127.0.0.1 at the seed port.',
    )
    port_offset: int = Field(
        default=0,
        ge=0,
        le=50000,
        description="Added to every seed port (run a second platform beside the first).",
    )
    log_level: str = Field(default="INFO", description="Python logging level for every service.")
    log_json: bool = Field(default=False, description="Write logs as JSON lines instead of text.")
    internal_token_ttl_s: int = Field(
        default=60,
        ge=5,
        le=600,
        description="Lifetime of the gateway's per-request internal tokens.",
    )

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    def url_for(self, service: str) -> str:
        """Base URL of another service."""
        if service in self.service_urls:
            return self.service_urls[service].rstrip("/")
        return f"http://127.0.0.1:{self.port_of(service)}"

    def port_of(self, service: str) -> int:
        """The port a service listens on here: its seed port plus the offset."""
        return SERVICES[service].port + self.port_offset

    def secrets(self) -> Secrets:
        return Secrets(self.secrets_dir, self.data_dir / "secrets")


class Secrets:
    """Named secrets: `/run/secrets/<name>` when present, else generated once into the data dir.

    Generated files are created with mode 0600 and O_EXCL, so processes started at the same
    moment agree on one value.
    """

    def __init__(self, mounted_dir: Path, generated_dir: Path) -> None:
        self.mounted_dir = mounted_dir
        self.generated_dir = generated_dir

    def get(self, name: str) -> str:
        mounted = self.mounted_dir / name
        if mounted.is_file():
            return mounted.read_text().strip()
        path = self.generated_dir / name
        if not path.exists():
            self.generated_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            value = _secrets.token_hex(32)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(value)
                return value
        value = path.read_text().strip()
        if not value:
            raise RuntimeError(f"secret file {path} is empty")
        return value


class ServiceSettings(BaseSettings):
    """Base of every service's settings: its own fields plus the common ones."""

    model_config = SettingsConfigDict(extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest request body accepted (413 beyond it)."
    )
