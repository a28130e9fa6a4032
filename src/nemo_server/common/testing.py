"""Helpers for tests of any service: internal-token headers for a principal."""

from __future__ import annotations

from nemo_server.common.auth import InternalTokenCodec, Principal
from nemo_server.common.settings import CommonSettings

ALICE = Principal(user_id="u-alice", username="alice", roles=("user",))
BOB = Principal(user_id="u-bob", username="bob", roles=("user",))
ADMIN = Principal(user_id="u-admin", username="admin", roles=("admin", "user"))


def internal_headers(settings: CommonSettings, principal: Principal = ALICE) -> dict[str, str]:
    """`Authorization` header carrying a valid internal token for `principal`."""
    codec = InternalTokenCodec(settings.secrets().get("internal_key"), ttl_s=settings.internal_token_ttl_s)
    return {"Authorization": f"Bearer {codec.mint(principal)}"}
