"""Internal tokens: the gateway names the user to the services behind it.

The gateway authenticates a client, then forwards with `Authorization: Bearer <internal token>`:
a short-lived HS256 JWT signed with the internal key (a secret every service reads), audience
`nemo-internal`. Services accept nothing else; identity headers sent by clients are ignored.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import Request

from nemo_server.common.errors import Forbidden, Unauthorized

INTERNAL_AUDIENCE = "nemo-internal"
INTERNAL_ISSUER = "nemo-gateway"
INTERNAL_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. Every read and write in a service is scoped to `user_id`."""

    user_id: str
    username: str
    roles: tuple[str, ...] = ("user",)
    api_key_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


SYSTEM_PRINCIPAL = Principal(user_id="system", username="system", roles=("service",))


class InternalTokenCodec:
    """Mints and verifies internal tokens with one pinned algorithm."""

    def __init__(self, key: str, ttl_s: int = 60, leeway_s: int = 5) -> None:
        if len(key) < 32:
            raise ValueError("internal key must be at least 32 characters")
        self._key = key
        self.ttl_s = ttl_s
        self.leeway_s = leeway_s

    def mint(self, principal: Principal, *, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": INTERNAL_ISSUER,
            "aud": INTERNAL_AUDIENCE,
            "sub": principal.user_id,
            "name": principal.username,
            "roles": list(principal.roles),
            "iat": issued,
            "exp": issued + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "typ": "internal",
        }
        if principal.api_key_id:
            claims["akid"] = principal.api_key_id
        return jwt.encode(claims, self._key, algorithm=INTERNAL_ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[INTERNAL_ALGORITHM],
                audience=INTERNAL_AUDIENCE,
                issuer=INTERNAL_ISSUER,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "typ"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid internal token: {exc}") from None
        if claims.get("typ") != "internal":
            raise Unauthorized("invalid internal token: wrong token type")
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("invalid internal token: bad roles claim")
        return Principal(
            user_id=str(claims["sub"]),
            username=str(claims.get("name", "")),
            roles=tuple(roles),
            api_key_id=claims.get("akid"),
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the principal the internal-auth middleware verified."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthorized("a valid internal token is required")
    return principal


def require_admin(request: Request) -> Principal:
    """FastAPI dependency: the principal, who must be an admin."""
    principal = current_principal(request)
    if not principal.is_admin:
        raise Forbidden("admin role required")
    return principal
