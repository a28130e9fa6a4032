"""Authentication use cases: users, logins with rotating refresh tokens, API keys."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nemo_server.common.auth import Principal
from nemo_server.common.errors import Forbidden, NotFound, Unauthorized, Unprocessable
from nemo_server.gateway.models import ApiKey, AuthSession, User
from nemo_server.gateway.store import GatewayStore, utcnow
from nemo_server.gateway.tokens import TokenCodec

log = logging.getLogger("nemo.gateway.auth")

API_KEY_PREFIX = "nemo_sk_"
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
_TOUCH_EVERY_S = 60.0
# Verified against a throwaway hash when the user does not exist, so a wrong username costs
# the same time as a wrong password (no user enumeration by timing).
_DUMMY_HASH = PasswordHasher().hash("not-a-real-password")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def hash_api_key(key: str) -> str:
    # API keys carry 256 random bits, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(key.encode()).hexdigest()


def _roles(role: str) -> tuple[str, ...]:
    return ("admin", "user") if role == "admin" else ("user",)


class AuthService:
    def __init__(self, store: GatewayStore, tokens: TokenCodec, *, open_registration: bool) -> None:
        self.store = store
        self.tokens = tokens
        self._default_open_registration = open_registration
        self._hasher = PasswordHasher()
        self._touched: dict[str, float] = {}

    # users -----------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str = "user") -> User:
        if not _USERNAME.match(username):
            raise Unprocessable(
                "username must be 3-64 letters, digits, '_', '.' or '-'", param="username"
            )
        if len(password) < 8:
            raise Unprocessable("password must be at least 8 characters", param="password")
        if role not in ("user", "admin"):
            raise Unprocessable("role must be 'user' or 'admin'", param="role")
        user = User(
            id=uuid.uuid4().hex,
            username=username,
            password_hash=self._hasher.hash(password),
            role=role,
            disabled=False,
            created_at=utcnow(),
        )
        return self.store.create_user(user)

    def registration_open(self) -> bool:
        value = self.store.get_setting("open_registration")
        return self._default_open_registration if value is None else value == "true"

    def set_registration_open(self, value: bool) -> None:
        self.store.set_setting("open_registration", "true" if value else "false")

    def register(self, username: str, password: str) -> User:
        if not self.registration_open():
            raise Forbidden("registration is closed; ask an admin for an account")
        return self.create_user(username, password)

    def bootstrap_admin(self, username: str, password: str | None = None) -> str | None:
        """Create the first admin when there are no users; returns the generated password."""
        if self.store.count_users() > 0:
            return None
        generated = password or secrets.token_urlsafe(18)
        self.create_user(username, generated, role="admin")
        log.info("created admin account %r", username)
        return generated

    def update_user(self, user_id: str, **values: object) -> User:
        if "password" in values:
            password = str(values.pop("password"))
            if len(password) < 8:
                raise Unprocessable("password must be at least 8 characters", param="password")
            values["password_hash"] = self._hasher.hash(password)
        user = self.store.update_user(user_id, **values)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    # logins ----------------------------------------------------------------------------
    def login(self, username: str, password: str) -> TokenPair:
        user = self.store.user_by_name(username)
        try:
            self._hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            raise Unauthorized("wrong username or password") from None
        if user is None:
            raise Unauthorized("wrong username or password")
        if user.disabled:
            raise Unauthorized("account disabled")
        session_id = uuid.uuid4().hex
        refresh, claims = self.tokens.issue("refresh", user.id, session_id)
        now = utcnow()
        self.store.create_session(
            AuthSession(
                id=session_id,
                user_id=user.id,
                current_jti=claims.jti,
                created_at=now,
                expires_at=now + timedelta(seconds=self.tokens.refresh_ttl_s),
            )
        )
        return self._pair(user.id, session_id, refresh)

    def refresh(self, refresh_token: str) -> TokenPair:
        claims = self.tokens.verify(refresh_token, "refresh")
        state = self.store.session_state(claims.session_id)
        if state is None or state.revoked or state.user.disabled:
            raise Unauthorized("session ended; log in again")
        new_jti = uuid.uuid4().hex
        if not self.store.rotate(claims.session_id, claims.jti, new_jti):
            # A spent refresh token came back: someone holds a copy. End the whole family.
            self.store.revoke_session(claims.session_id, "refresh token reuse")
            log.warning("refresh token reuse for session %s; session revoked", claims.session_id)
            raise Unauthorized("refresh token already used; session revoked")
        refresh, _ = self.tokens.issue("refresh", claims.user_id, claims.session_id, jti=new_jti)
        return self._pair(claims.user_id, claims.session_id, refresh)

    def logout(self, principal: Principal) -> None:
        session_id = principal.extra.get("session_id")
        if session_id:
            self.store.revoke_session(session_id, "logout")

    def _pair(self, user_id: str, session_id: str, refresh: str) -> TokenPair:
        access, _ = self.tokens.issue("access", user_id, session_id)
        return TokenPair(access, refresh, self.tokens.access_ttl_s)

    # per-request authentication ---------------------------------------------------------
    def authenticate(self, bearer: str) -> tuple[Principal, int | None]:
        """The principal of an access token or API key, and its own rate limit if any."""
        if bearer.startswith(API_KEY_PREFIX):
            return self._authenticate_api_key(bearer)
        claims = self.tokens.verify(bearer, "access")
        state = self.store.session_state(claims.session_id)
        if state is None or state.revoked:
            raise Unauthorized("session ended; log in again")
        if state.user.disabled:
            raise Unauthorized("account disabled")
        user = state.user
        principal = Principal(
            user_id=user.user_id,
            username=user.username,
            roles=_roles(user.role),
            extra={"session_id": claims.session_id},
        )
        return principal, user.rate_limit_per_minute

    def _authenticate_api_key(self, key: str) -> tuple[Principal, int | None]:
        state = self.store.api_key_state(hash_api_key(key))
        if state is None:
            raise Unauthorized("invalid API key")
        user = state.user
        if user.disabled:
            raise Unauthorized("account disabled")
        now = time.monotonic()
        # Write last_used_at at most once a minute per key, not on every request.
        if now - self._touched.get(state.key_id, 0.0) > _TOUCH_EVERY_S:
            self._touched[state.key_id] = now
            self.store.touch_api_key(state.key_id)
        principal = Principal(
            user_id=user.user_id,
            username=user.username,
            roles=_roles(user.role),
            api_key_id=state.key_id,
        )
        return principal, state.rate_limit_per_minute or user.rate_limit_per_minute

    # api keys --------------------------------------------------------------------------
    def create_api_key(
        self, principal: Principal, name: str, rate_limit_per_minute: int | None
    ) -> tuple[ApiKey, str]:
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=uuid.uuid4().hex,
            user_id=principal.user_id,
            name=name,
            prefix=secret[: len(API_KEY_PREFIX) + 4],
            key_hash=hash_api_key(secret),
            rate_limit_per_minute=rate_limit_per_minute,
            created_at=datetime.now(UTC),
        )
        self.store.create_api_key(key)
        return key, secret

    def delete_api_key(self, principal: Principal, key_id: str) -> None:
        if not self.store.delete_api_key(principal.user_id, key_id):
            raise NotFound(f"no API key {key_id}", param="id")
