"""`nemo up` as a user runs it: real processes, supervision, status, users, clean stop."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _nemo(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemo_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _wait(predicate, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    offset = random.randint(20000, 29000)
    return {**os.environ, "NEMO_DATA_DIR": str(data_dir), "NEMO_PORT_OFFSET": str(offset)}


@pytest.mark.integration
def test_up_supervises_restarts_and_stops_cleanly(env: dict[str, str], data_dir: Path) -> None:
    port = 8000 + int(env["NEMO_PORT_OFFSET"])
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "nemo_server", "up", "--only", "gateway", "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _wait(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200), (
            "gateway never ready"
        )

        status = _nemo("status", env=env)
        assert "gateway" in status.stdout and "healthy" in status.stdout

        first_pid = httpx.get(f"{url}/healthz").json()["pid"]
        os.kill(first_pid, signal.SIGKILL)
        assert _wait(lambda: httpx.get(f"{url}/healthz", timeout=1).json()["pid"] != first_pid), (
            "not restarted"
        )

        # Users made by the CLI can log in through the running gateway.
        created = _nemo("user", "create", "carol", "--password", "carol-password", env=env)
        assert created.returncode == 0, created.stderr
        token = httpx.post(
            f"{url}/v1/auth/token", data={"username": "carol", "password": "carol-password"}
        )
        assert token.status_code == 200
        disabled = _nemo("user", "disable", "carol", env=env)
        assert disabled.returncode == 0
        me = httpx.get(
            f"{url}/v1/users/me",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert me.status_code == 401
        listed = _nemo("user", "list", env=env)
        assert "carol" in listed.stdout and "admin" in listed.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "password" in output  # the admin password, printed once at first start
    supervisor_log = (data_dir / "logs" / "supervisor.log").read_text()
    assert "service gateway exited with code -9" in supervisor_log
    log = (data_dir / "logs" / "gateway.log").read_text()
    assert "Application startup complete" in log
    assert not _wait(lambda: httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200, timeout=1)


def test_up_rejects_unknown_services(env: dict[str, str]) -> None:
    result = _nemo("up", "--only", "gateway,warp-drive", env=env)
    assert result.returncode != 0
    assert "warp-drive" in result.stdout + result.stderr
