"""Request and response models of the gateway's own endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token stays valid.")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1)


class RegisterRequest(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    role: str
    disabled: bool
    rate_limit_per_minute: int | None = None
    created_at: datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Literal["user", "admin"] = "user"
    rate_limit_per_minute: int | None = Field(default=None, ge=1)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    role: Literal["user", "admin"] | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    rate_limit_per_minute: int | None = None
    created_at: datetime
    last_used_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key. Shown once; only its hash is stored.")


class AdminSettings(BaseModel):
    open_registration: bool
