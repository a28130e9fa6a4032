"""Access and refresh JWTs, checked as RFC 8725 asks.

One pinned algorithm (HS256 with a 256-bit secret from the `jwt_key` secret); `exp`, `iat`,
`iss`, `aud`, `sub`, `jti` and a token type (`typ`) are required; leeway at most 60 s. Access
and refresh tokens carry different `typ` values and different audiences, so neither is accepted
where the other is expected.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from nemo_server.common.errors import Unauthorized

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti", "typ", "sid"]


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    session_id: str
    jti: str
    issued_at: int
    expires_at: int
    type: TokenType


class TokenCodec:
    """Issues and verifies the gateway's JWTs."""

    def __init__(
        self,
        key: str,
        *,
        issuer: str,
        audience: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
        leeway_s: int,
    ) -> None:
        if len(key) < 32:
            raise ValueError("jwt key must be at least 32 characters (256 bits)")
        if leeway_s > 60:
            raise ValueError("leeway must be at most 60 s")
        self._key = key
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.leeway_s = leeway_s

    def _audience(self, kind: TokenType) -> str:
        return self.audience if kind == "access" else f"{self.audience}:refresh"

    def issue(
        self, kind: TokenType, user_id: str, session_id: str, *, jti: str | None = None
    ) -> tuple[str, TokenClaims]:
        now = int(time.time())
        ttl = self.access_ttl_s if kind == "access" else self.refresh_ttl_s
        claims = TokenClaims(
            user_id=user_id,
            session_id=session_id,
            jti=jti or uuid.uuid4().hex,
            issued_at=now,
            expires_at=now + ttl,
            type=kind,
        )
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self._audience(kind),
            "sub": user_id,
            "sid": session_id,
            "jti": claims.jti,
            "iat": now,
            "exp": claims.expires_at,
            "typ": kind,
        }
        token = jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"typ": "JWT"})
        return token, claims

    def verify(self, token: str, kind: TokenType) -> TokenClaims:
        """Verify a token of the given type; any flaw raises Unauthorized (401)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        # PyJWT already refuses algorithms outside the list; checking the header first gives a
        # clear message and refuses `none` in any spelling before any key handling.
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("token algorithm not accepted")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self._audience(kind),
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": _REQUIRED, "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if claims.get("typ") != kind:
            raise Unauthorized(f"expected a {kind} token")
        if claims["iat"] > time.time() + self.leeway_s:
            raise Unauthorized("token issued in the future")
        for name in ("sub", "sid", "jti"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise Unauthorized(f"invalid token: bad {name} claim")
        return TokenClaims(
            user_id=claims["sub"],
            session_id=claims["sid"],
            jti=claims["jti"],
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            type=kind,
        )
