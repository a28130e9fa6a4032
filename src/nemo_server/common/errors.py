"""One error tree and one JSON error shape for every service.

The shape is OpenAI's (`{"error": {"message", "type", "param", "code"}}`) so OpenAI clients
parse our errors, plus the request id so a user can quote it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nemo_server.common.context import request_id_var

log = logging.getLogger("nemo.errors")


class NemoError(Exception):
    """Base of every error a service raises on purpose."""

    status_code: int = 500
    type: str = "server_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(NemoError):
    status_code, type, code = 400, "invalid_request_error", "bad_request"


class Unauthorized(NemoError):
    status_code, type, code = 401, "authentication_error", "unauthorized"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(NemoError):
    status_code, type, code = 403, "permission_error", "forbidden"


class NotFound(NemoError):
    status_code, type, code = 404, "not_found_error", "not_found"


class Conflict(NemoError):
    status_code, type, code = 409, "conflict_error", "conflict"


class PayloadTooLarge(NemoError):
    status_code, type, code = 413, "invalid_request_error", "payload_too_large"


class UnsupportedMediaType(NemoError):
    status_code, type, code = 415, "invalid_request_error", "unsupported_media_type"


class Unprocessable(NemoError):
    status_code, type, code = 422, "invalid_request_error", "validation_error"


class RateLimited(NemoError):
    status_code, type, code = 429, "rate_limit_error", "rate_limited"


class ServiceUnavailable(NemoError):
    status_code, type, code = 503, "service_unavailable", "service_unavailable"


class UpstreamTimeout(NemoError):
    status_code, type, code = 504, "service_unavailable", "upstream_timeout"


def error_body(
    message: str,
    *,
    type: str,
    code: str,
    param: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one error shape."""
    body: dict[str, Any] = {
        "message": message,
        "type": type,
        "param": param,
        "code": code,
        "request_id": request_id_var.get(),
    }
    if extra:
        body.update(extra)
    return {"error": body}


def error_response(exc: NemoError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.message, type=exc.type, code=exc.code, param=exc.param, extra=exc.extra),
        status_code=exc.status_code,
        headers=exc.headers,
    )


_STATUS_TYPES: dict[int, type[NemoError]] = {
    cls.status_code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        RateLimited,
        ServiceUnavailable,
    )
}


def error_for_status(status: int, message: str, **kw: Any) -> NemoError:
    """The NemoError matching an HTTP status (used to re-raise errors from other services)."""
    cls = _STATUS_TYPES.get(status)
    if cls is None:
        err = NemoError(message, **kw)
        err.status_code = status
        return err
    return cls(message, **kw)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


async def _nemo_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NemoError)
    if exc.status_code >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    return error_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field_name(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        message = f"malformed JSON body: {first.get('ctx', {}).get('error', first['msg'])}"
        field = "body"
    else:
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
    details = [
        {"field": _field_name(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")}
        for e in errors
    ]
    return JSONResponse(
        error_body(
            message,
            type="invalid_request_error",
            code="validation_error",
            param=field,
            extra={"details": details},
        ),
        status_code=422,
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: ("not_found_error", "not_found"),
        405: ("invalid_request_error", "method_not_allowed"),
        413: ("invalid_request_error", "payload_too_large"),
    }
    type_, code = codes.get(exc.status_code, ("invalid_request_error", "http_error"))
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route"
    return JSONResponse(
        error_body(message, type=type_, code=code),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        error_body(
            "internal error; quote the request id when reporting it",
            type="server_error",
            code="internal_error",
        ),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NemoError, _nemo_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
