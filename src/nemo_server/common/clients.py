"""Typed httpx clients for service-to-service calls.

Every call carries an internal token naming the principal it acts for and the current request
id. Transport failures become `ServiceUnavailable`/`UpstreamTimeout` naming the service; error
responses from the other service are re-raised in the one error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from nemo_server.common.auth import InternalTokenCodec, Principal
from nemo_server.common.context import REQUEST_ID_HEADER, request_id_var
from nemo_server.common.errors import ServiceUnavailable, UpstreamTimeout, error_for_status
from nemo_server.common.settings import CommonSettings


class ServiceClient:
    """Calls one other service on behalf of a principal."""

    def __init__(
        self,
        service: str,
        base_url: str,
        codec: InternalTokenCodec,
        *,
        timeout: httpx.Timeout | float = httpx.Timeout(30.0, connect=2.0),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        self._codec = codec
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    @classmethod
    def for_service(
        cls, service: str, settings: CommonSettings, codec: InternalTokenCodec, **kw: Any
    ) -> ServiceClient:
        return cls(service, settings.url_for(service), codec, **kw)

    def headers(self, principal: Principal) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._codec.mint(principal)}"}
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    async def request(
        self, method: str, path: str, principal: Principal, **kw: Any
    ) -> httpx.Response:
        headers = {**self.headers(principal), **kw.pop("headers", {})}
        try:
            response = await self._http.request(method, path, headers=headers, **kw)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"service '{self.service}' did not answer in time") from None
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"service '{self.service}' is unavailable: {exc}") from None
        if response.status_code >= 400:
            raise _as_error(self.service, response)
        return response

    async def json(self, method: str, path: str, principal: Principal, **kw: Any) -> Any:
        return (await self.request(method, path, principal, **kw)).json()

    @asynccontextmanager
    async def stream(
        self, method: str, path: str, principal: Principal, **kw: Any
    ) -> AsyncIterator[httpx.Response]:
        headers = {**self.headers(principal), **kw.pop("headers", {})}
        request = self._http.build_request(method, path, headers=headers, **kw)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"service '{self.service}' did not answer in time") from None
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"service '{self.service}' is unavailable: {exc}") from None
        try:
            if response.status_code >= 400:
                await response.aread()
                raise _as_error(self.service, response)
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()


def _as_error(service: str, response: httpx.Response) -> Exception:
    message = f"service '{service}' answered {response.status_code}"
    param = None
    try:
        body = response.json()
        err = body.get("error", {}) if isinstance(body, dict) else {}
        message = err.get("message") or message
        param = err.get("param")
    except ValueError:
        pass
    return error_for_status(response.status_code, message, param=param)
