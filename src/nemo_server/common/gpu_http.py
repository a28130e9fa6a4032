"""The GPU lease client over HTTP: what services use to talk to the coordinator."""

from __future__ import annotations

from typing import Any

import httpx

from nemo_server.common.auth import SYSTEM_PRINCIPAL, InternalTokenCodec
from nemo_server.common.errors import NemoError, ServiceUnavailable, error_for_status
from nemo_server.common.gpu import LONG_POLL_S, LeaseClient
from nemo_server.common.gpu_state import LeaseLost, OverBudget, UnknownLease
from nemo_server.common.settings import CommonSettings


class HttpTransport:
    """Lease operations against the coordinator's `/internal/v1/leases` API."""

    def __init__(
        self,
        base_url: str,
        codec: InternalTokenCodec,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._codec = codec
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(LONG_POLL_S + 10.0, connect=2.0),
            transport=transport,
        )

    async def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._codec.mint(SYSTEM_PRINCIPAL)}"}
        try:
            response = await self._http.request(method, path, headers=headers, **kw)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"GPU coordinator is unavailable: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else {}

    async def acquire(
        self, holder: str, priority: str, vram_mb: int, ttl_s: float, wait_s: float
    ) -> dict[str, Any]:
        body = {
            "holder": holder,
            "priority": priority,
            "vram_mb": vram_mb,
            "ttl_s": ttl_s,
            "wait_s": wait_s,
        }
        return await self._call("POST", "/internal/v1/leases", json=body)

    async def poll(self, lease_id: str, wait_s: float) -> dict[str, Any]:
        return await self._call("GET", f"/internal/v1/leases/{lease_id}", params={"wait_s": wait_s})

    async def heartbeat(self, lease_id: str, token: int, wait_s: float) -> dict[str, Any]:
        body = {"token": token, "wait_s": wait_s}
        return await self._call("POST", f"/internal/v1/leases/{lease_id}/heartbeat", json=body)

    async def validate(self, lease_id: str, token: int) -> dict[str, Any]:
        body = {"token": token}
        return await self._call("POST", f"/internal/v1/leases/{lease_id}/validate", json=body)

    async def release(self, lease_id: str, token: int) -> None:
        body = {"token": token}
        await self._call("POST", f"/internal/v1/leases/{lease_id}/release", json=body)

    async def cancel(self, lease_id: str) -> None:
        await self._call("DELETE", f"/internal/v1/leases/{lease_id}")

    async def aclose(self) -> None:
        await self._http.aclose()


def _error(response: httpx.Response) -> NemoError:
    message, param, code = f"GPU coordinator answered {response.status_code}", None, None
    try:
        err = response.json().get("error", {})
        message, param, code = err.get("message") or message, err.get("param"), err.get("code")
    except (ValueError, AttributeError):
        pass
    if code == "lease_lost":
        return LeaseLost(message, param=param)
    if code == "unknown_lease":
        return UnknownLease(message, param=param)
    if code == "over_budget":
        return OverBudget(message, param=param)
    return error_for_status(response.status_code, message, param=param)


class HttpLeaseClient(LeaseClient):
    """The real client: talks to the coordinator over HTTP with internal tokens."""

    def __init__(self, base_url: str, codec: InternalTokenCodec, **kw: Any) -> None:
        super().__init__(HttpTransport(base_url, codec, **kw))

    @classmethod
    def for_settings(
        cls, settings: CommonSettings, codec: InternalTokenCodec | None = None, **kw: Any
    ) -> HttpLeaseClient:
        """A client for the coordinator named in `settings` (its seed port by default)."""
        if codec is None:
            codec = InternalTokenCodec(
                settings.secrets().get("internal_key"), ttl_s=settings.internal_token_ttl_s
            )
        return cls(settings.url_for("coordinator"), codec, **kw)
