"""Helpers for benchmarks: run a service or the gateway as a real process on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
