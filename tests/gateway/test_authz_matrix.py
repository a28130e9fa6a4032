"""Every gateway route against anonymous callers, users and admins."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from nemo_server.gateway.proxy import ROUTES
from tests.gateway.conftest import bearer

# (method, path, body kind) -> expected status for anonymous, user, admin.
# 503 means "allowed through to a service that is not running in this test".
MATRIX = [
    ("GET", "/v1/users/me", None, (401, 200, 200)),
    ("GET", "/v1/api-keys", None, (401, 200, 200)),
    ("POST", "/v1/api-keys", {"name": "k"}, (401, 201, 201)),
    ("DELETE", "/v1/api-keys/nope", None, (401, 404, 404)),
    ("POST", "/v1/auth/logout", None, (401, 204, 204)),
    ("GET", "/v1/admin/users", None, (401, 403, 200)),
    ("POST", "/v1/admin/users", {"username": "bob1", "password": "bob-password"}, (401, 403, 201)),
    ("GET", "/v1/admin/users/nope", None, (401, 403, 404)),
    ("PATCH", "/v1/admin/users/nope", {"disabled": False}, (401, 403, 404)),
    ("DELETE", "/v1/admin/users/nope", None, (401, 403, 404)),
    ("GET", "/v1/admin/settings", None, (401, 403, 200)),
    ("PUT", "/v1/admin/settings", {"open_registration": False}, (401, 403, 200)),
    ("GET", "/v1/gpu/status", None, (401, 403, 503)),
    *[("GET", prefix, None, (401, 503, 503)) for prefix, svc in ROUTES if svc != "coordinator"],
    ("GET", "/v1/unknown-thing", None, (404, 404, 404)),
]


@pytest.mark.parametrize(
    "method,path,body,expected", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX]
)
def test_route_access(
    gateway: TestClient,
    user_token: str,
    admin_token: str,
    method: str,
    path: str,
    body,
    expected,  # type: ignore[no-untyped-def]
) -> None:
    callers = [{}, bearer(user_token), bearer(admin_token)]
    got = []
    for headers in callers:
        kwargs = {"json": body} if body is not None else {}
        got.append(gateway.request(method, path, headers=headers, **kwargs).status_code)
    # logout ends the caller's session, so do the authorised callers on fresh logins each time
    assert tuple(got) == expected


def test_public_routes_need_no_token(gateway: TestClient) -> None:
    assert gateway.get("/healthz").status_code == 200
    assert gateway.get("/readyz").status_code == 200
    assert gateway.get("/metrics").status_code == 200
    assert gateway.post("/v1/auth/refresh", json={"refresh_token": "x"}).status_code == 401
    assert (
        gateway.post(
            "/v1/auth/register", json={"username": "abc", "password": "abcdefgh"}
        ).status_code
        == 403
    )
