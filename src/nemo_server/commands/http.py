"""How CLI commands reach the platform: the gateway's URL and the user's credentials.

Credentials come from `NEMO_API_KEY`, else from `nemo login` (stored under
`<data dir>/cli/credentials.json`, mode 0600; the access token is refreshed when it expires).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from nemo_server.common.settings import CommonSettings


def gateway_url() -> str:
    return os.environ.get("NEMO_GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")


def credentials_path() -> Path:
    return CommonSettings().data_dir / "cli" / "credentials.json"


def save_credentials(tokens: dict[str, Any]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": time.time() + float(tokens.get("expires_in", 0)) - 30,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)


def _bearer() -> str:
    api_key = os.environ.get("NEMO_API_KEY")
    if api_key:
        return api_key
    path = credentials_path()
    if not path.exists():
        raise typer.BadParameter("not logged in: run `nemo login` or set NEMO_API_KEY")
    record = json.loads(path.read_text())
    if record["expires_at"] < time.time():
        response = httpx.post(
            f"{gateway_url()}/v1/auth/refresh",
            json={"refresh_token": record["refresh_token"]},
            timeout=10,
        )
        if response.status_code != 200:
            raise typer.BadParameter("session expired: run `nemo login` again")
        save_credentials(response.json())
        record = json.loads(path.read_text())
    return str(record["access_token"])


def client(timeout: float = 300.0) -> httpx.Client:
    """An httpx client for the gateway, authenticated as the CLI's user."""
    return httpx.Client(
        base_url=gateway_url(),
        headers={"Authorization": f"Bearer {_bearer()}"},
        timeout=httpx.Timeout(timeout, connect=5.0),
    )


def fail_on_error(response: httpx.Response) -> None:
    """Exit with the platform's error message when a call failed."""
    if response.status_code < 400:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    typer.secho(f"error {response.status_code}: {message}", fg="red", err=True)
    raise typer.Exit(1)
