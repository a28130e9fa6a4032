"""Logins, rotating refresh tokens, logout, disabling, registration and API keys."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.gateway.conftest import ADMIN_PASSWORD, bearer, login


def test_login_returns_oauth2_token_pair(gateway: TestClient) -> None:
    tokens = login(gateway, "admin", ADMIN_PASSWORD)
    assert tokens["token_type"] == "bearer"
    assert 0 < tokens["expires_in"] <= 900
    me = gateway.get("/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "admin" and me.json()["role"] == "admin"


def test_wrong_password_and_unknown_user_look_the_same(gateway: TestClient) -> None:
    wrong = gateway.post("/v1/auth/token", data={"username": "admin", "password": "nope-nope"})
    unknown = gateway.post("/v1/auth/token", data={"username": "ghost", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


def test_login_form_missing_field_is_422_naming_it(gateway: TestClient) -> None:
    response = gateway.post("/v1/auth/token", data={"username": "admin"})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "password"


def test_refresh_rotates_and_reuse_revokes_the_family(gateway: TestClient) -> None:
    first = login(gateway, "admin", ADMIN_PASSWORD)
    second = gateway.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert gateway.get("/v1/users/me", headers=bearer(rotated["access_token"])).status_code == 200

    # The spent token comes back (stolen copy): refused, and the whole session ends.
    reuse = gateway.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["error"]["message"]
    assert (
        gateway.post(
            "/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        ).status_code
        == 401
    )
    assert gateway.get("/v1/users/me", headers=bearer(rotated["access_token"])).status_code == 401


def test_logout_ends_access_and_refresh_tokens_at_once(gateway: TestClient) -> None:
    tokens = login(gateway, "admin", ADMIN_PASSWORD)
    other = login(gateway, "admin", ADMIN_PASSWORD)
    assert (
        gateway.post("/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 204
    )
    assert gateway.get("/v1/users/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert (
        gateway.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        ).status_code
        == 401
    )
    # Another login of the same user is a different session and goes on.
    assert gateway.get("/v1/users/me", headers=bearer(other["access_token"])).status_code == 200


def test_disabling_a_user_ends_their_tokens_and_keys(
    gateway: TestClient, admin_token: str, user_token: str
) -> None:
    key = gateway.post("/v1/api-keys", json={"name": "k"}, headers=bearer(user_token)).json()["key"]
    users = gateway.get("/v1/admin/users", headers=bearer(admin_token)).json()["data"]
    alice = next(u for u in users if u["username"] == "alice")
    patched = gateway.patch(
        f"/v1/admin/users/{alice['id']}", json={"disabled": True}, headers=bearer(admin_token)
    )
    assert patched.status_code == 200 and patched.json()["disabled"] is True
    assert gateway.get("/v1/users/me", headers=bearer(user_token)).status_code == 401
    assert gateway.get("/v1/users/me", headers=bearer(key)).status_code == 401
    assert (
        gateway.post(
            "/v1/auth/token", data={"username": "alice", "password": "alice-password"}
        ).status_code
        == 401
    )


def test_admin_cannot_disable_themselves(gateway: TestClient, admin_token: str) -> None:
    me = gateway.get("/v1/users/me", headers=bearer(admin_token)).json()
    response = gateway.patch(
        f"/v1/admin/users/{me['id']}", json={"disabled": True}, headers=bearer(admin_token)
    )
    assert response.status_code == 409


def test_registration_is_closed_until_an_admin_opens_it(
    gateway: TestClient, admin_token: str
) -> None:
    body = {"username": "newbie", "password": "newbie-password"}
    assert gateway.post("/v1/auth/register", json=body).status_code == 403
    opened = gateway.put(
        "/v1/admin/settings", json={"open_registration": True}, headers=bearer(admin_token)
    )
    assert opened.status_code == 200
    created = gateway.post("/v1/auth/register", json=body)
    assert created.status_code == 201 and created.json()["role"] == "user"
    assert gateway.post("/v1/auth/register", json=body).status_code == 409
    short = gateway.post("/v1/auth/register", json={"username": "x2x", "password": "short"})
    assert short.status_code == 422 and short.json()["error"]["param"] == "password"


def test_api_key_shown_once_stored_hashed_and_accepted_as_bearer(
    gateway: TestClient, user_token: str, gateway_settings
) -> None:  # type: ignore[no-untyped-def]
    created = gateway.post("/v1/api-keys", json={"name": "laptop"}, headers=bearer(user_token))
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("nemo_sk_")
    listed = gateway.get("/v1/api-keys", headers=bearer(user_token)).json()["data"]
    assert len(listed) == 1 and "key" not in listed[0] and key.startswith(listed[0]["prefix"])
    me = gateway.get("/v1/users/me", headers=bearer(key))
    assert me.status_code == 200 and me.json()["username"] == "alice"

    from nemo_server.gateway.app import open_database

    db = open_database(gateway_settings)
    with db.engine.connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
    db.dispose()
    assert key not in stored and len(stored[0]) == 64

    assert (
        gateway.delete(f"/v1/api-keys/{listed[0]['id']}", headers=bearer(user_token)).status_code
        == 204
    )
    assert gateway.get("/v1/users/me", headers=bearer(key)).status_code == 401


def test_users_cannot_delete_other_users_keys(
    gateway: TestClient, admin_token: str, user_token: str
) -> None:
    key_id = gateway.post("/v1/api-keys", json={"name": "a"}, headers=bearer(admin_token)).json()[
        "id"
    ]
    assert gateway.delete(f"/v1/api-keys/{key_id}", headers=bearer(user_token)).status_code == 404


def test_web_ui_is_served_at_the_root(gateway: TestClient) -> None:
    page = gateway.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/v1/auth/token" in page.text and "/v1/chat/completions" in page.text
