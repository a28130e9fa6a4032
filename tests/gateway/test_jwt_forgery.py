"""RFC 8725: every forged or misused token form gets 401."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from nemo_server.gateway.settings import GatewaySettings
from tests.gateway.conftest import ADMIN_PASSWORD, bearer, login


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def real(gateway: TestClient) -> dict[str, Any]:
    return login(gateway, "admin", ADMIN_PASSWORD)


@pytest.fixture
def key(gateway_settings: GatewaySettings) -> str:
    return gateway_settings.common.secrets().get("jwt_key")


def _assert_refused(gateway: TestClient, token: str) -> None:
    response = gateway.get("/v1/users/me", headers=bearer(token))
    assert response.status_code == 401, (token, response.text)
    assert response.json()["error"]["type"] == "authentication_error"


def test_the_real_token_works(gateway: TestClient, real: dict[str, Any]) -> None:
    assert gateway.get("/v1/users/me", headers=bearer(real["access_token"])).status_code == 200


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_case(gateway: TestClient, real: dict[str, Any], alg: str) -> None:
    claims = _claims(real["access_token"])
    for signature in ("", _b64(b"x")):
        _assert_refused(gateway, f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}.{signature}")


def test_wrong_key(gateway: TestClient, real: dict[str, Any]) -> None:
    claims = _claims(real["access_token"])
    _assert_refused(gateway, jwt.encode(claims, "another-key-" * 4, algorithm="HS256"))


def test_hs_rs_confusion(gateway: TestClient, real: dict[str, Any]) -> None:
    claims = _claims(real["access_token"])
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _assert_refused(gateway, jwt.encode(claims, private, algorithm="RS256"))
    # The classic confusion: HMAC-signed with an RSA public key's PEM bytes as the secret.
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(claims)
    import hashlib
    import hmac

    sig = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    _assert_refused(gateway, f"{header}.{body}.{_b64(sig)}")


def test_other_hmac_algorithms_refused(gateway: TestClient, real: dict[str, Any], key: str) -> None:
    claims = _claims(real["access_token"])
    _assert_refused(gateway, jwt.encode(claims, key, algorithm="HS512"))


def test_expired(gateway: TestClient, real: dict[str, Any], key: str) -> None:
    claims = _claims(real["access_token"])
    now = int(time.time())
    claims.update(iat=now - 3600, exp=now - 120)  # beyond the 30 s leeway
    _assert_refused(gateway, jwt.encode(claims, key, algorithm="HS256"))


def test_issued_in_the_future(gateway: TestClient, real: dict[str, Any], key: str) -> None:
    claims = _claims(real["access_token"])
    claims.update(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200)
    _assert_refused(gateway, jwt.encode(claims, key, algorithm="HS256"))


@pytest.mark.parametrize("field,value", [("aud", "someone-else"), ("iss", "evil-issuer")])
def test_wrong_audience_or_issuer(
    gateway: TestClient, real: dict[str, Any], key: str, field: str, value: str
) -> None:
    claims = _claims(real["access_token"])
    claims[field] = value
    _assert_refused(gateway, jwt.encode(claims, key, algorithm="HS256"))


def test_edited_body_keeps_old_signature(gateway: TestClient, real: dict[str, Any]) -> None:
    header, _, signature = real["access_token"].split(".")
    claims = _claims(real["access_token"])
    claims["sub"] = "someone-else"
    _assert_refused(gateway, f"{header}.{_b64(claims)}.{signature}")


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub", "typ", "jti", "sid"])
def test_missing_claims(gateway: TestClient, real: dict[str, Any], key: str, missing: str) -> None:
    claims = _claims(real["access_token"])
    del claims[missing]
    _assert_refused(gateway, jwt.encode(claims, key, algorithm="HS256"))


def test_refresh_token_is_not_an_access_token(gateway: TestClient, real: dict[str, Any]) -> None:
    _assert_refused(gateway, real["refresh_token"])


def test_access_token_is_not_a_refresh_token(gateway: TestClient, real: dict[str, Any]) -> None:
    response = gateway.post("/v1/auth/refresh", json={"refresh_token": real["access_token"]})
    assert response.status_code == 401


def test_refresh_claims_relabelled_as_access(
    gateway: TestClient, real: dict[str, Any], key: str
) -> None:
    claims = _claims(real["refresh_token"])
    claims["typ"] = "access"  # still the refresh audience
    _assert_refused(gateway, jwt.encode(claims, key, algorithm="HS256"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer", "nemo_sk_guess"])
def test_garbage(gateway: TestClient, garbage: str) -> None:
    response = gateway.get("/v1/users/me", headers={"Authorization": f"Bearer {garbage}"})
    assert response.status_code == 401


def test_internal_token_is_not_accepted_by_the_gateway(
    gateway: TestClient, gateway_settings
) -> None:  # type: ignore[no-untyped-def]
    from nemo_server.common.testing import ADMIN, internal_headers

    response = gateway.get("/v1/users/me", headers=internal_headers(gateway_settings.common, ADMIN))
    assert response.status_code == 401
