"""Helpers for benchmarks: run a service or the gateway as a real process on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nemo_server.common.testing import free_port

__all__ = ["free_port"]


def start(args: list[str], env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a process and wait until `url`/healthz answers."""
    handle = log.open("wb")
    process = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args} exited; see {log}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{args} did not start; see {log}")


def python() -> str:
    return sys.executable


ADMIN_PASSWORD = "bench-admin-password"


def gateway_env(work: Path, service_urls: dict[str, str]) -> dict[str, str]:
    """Environment of a benchmark platform in `work`: a known admin password, the given service
    URLs, and a rate limit too high to get in the way of the measurement."""
    import json

    (work / "secrets").mkdir(exist_ok=True)
    (work / "secrets" / "admin_password").write_text(ADMIN_PASSWORD)
    return {
        "NEMO_DATA_DIR": str(work / "data"),
        "NEMO_SECRETS_DIR": str(work / "secrets"),
        "NEMO_SERVICE_URLS": json.dumps(service_urls),
        "NEMO_GATEWAY_RATE_LIMIT_PER_MINUTE": "100000000",
        "NEMO_GATEWAY_RATE_LIMIT_BURST": "1000000",
        "NEMO_LOG_LEVEL": "WARNING",
    }
