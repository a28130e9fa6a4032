"""Gateway settings (env prefix `NEMO_GATEWAY_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Settings of the API gateway."""

    model_config = SettingsConfigDict(env_prefix="NEMO_GATEWAY_", extra="ignore")

    max_body_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1024,
        description="Largest request body (uploads included) the gateway accepts; 413 beyond it.",
    )
    jwt_issuer: str = Field(
        default="nemo-gateway", description="`iss` of the tokens the gateway issues."
    )
    jwt_audience: str = Field(
        default="nemo-api", description="`aud` of the tokens the gateway issues."
    )
    access_token_ttl_s: int = Field(
        default=900, ge=30, le=900, description="Access JWT lifetime (at most 15 minutes)."
    )
    refresh_token_ttl_s: int = Field(
        default=14 * 24 * 3600, ge=300, description="Refresh token lifetime; each use rotates it."
    )
    jwt_leeway_s: int = Field(
        default=30,
        ge=0,
        le=60,
        description="Clock skew allowed when checking exp/iat (at most 60 s).",
    )
    open_registration: bool = Field(
        default=False,
        description="Initial value of open registration (admins change it at /v1/admin/settings).",
    )
    admin_username: str = Field(
        default="admin", description="Username of the admin created on first start."
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        description="Requests per minute per user or API key (a user's own limit wins).",
    )
    rate_limit_burst: int = Field(
        default=60, ge=1, description="Requests a user may send at once before the rate applies."
    )
    login_attempts_per_minute: int = Field(
        default=10,
        ge=1,
        description="Password attempts per minute per username and per client address.",
    )
    redis_failure_mode: Literal["local", "closed"] = Field(
        default="local",
        description=(
            "When Redis is configured but down: `local` limits each replica on its own (logged), "
            "`closed` answers 503. Logins always fail closed."
        ),
    )
    upstream_connect_timeout_s: float = Field(
        default=2.0, gt=0, description="Time to connect to a service before answering 503."
    )
    upstream_read_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Longest silence from a service (between streamed chunks) before 504.",
    )
    trust_forwarded_for: bool = Field(
        default=False,
        description="Take the client address from X-Forwarded-For (behind a proxy you run).",
    )
