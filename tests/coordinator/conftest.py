"""Fixtures of the coordinator tests: servers in a thread, and real processes for fault tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemo_server.common.settings import CommonSettings
from nemo_server.common.testing import ServerThread
from nemo_server.coordinator.app import create_app
from nemo_server.coordinator.settings import CoordinatorSettings

HERE = Path(__file__).parent


@pytest.fixture
def coordinator_settings(common_settings: CommonSettings) -> CoordinatorSettings:
    return CoordinatorSettings(
        common=common_settings,
        budget_source="config",
        vram_budget_mb=1000,
        grace_s=2.0,
        max_ttl_s=5.0,
        tick_s=0.05,
    )


@pytest.fixture
def thread_server(coordinator_settings: CoordinatorSettings) -> Iterator[ServerThread]:
    with ServerThread(create_app(coordinator_settings)) as server:
        yield server


class Proc:
    """A child process we started (and only that one is ever signalled)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(self.args, env=self.env, stdout=handle, stderr=handle)
        return self

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGCONT)
        self.popen.terminate()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


class Cluster:
    """Coordinators, holders and a private redis-server, all started and stopped by one test."""

    def __init__(self, tmp: Path, data_dir: Path) -> None:
        self.tmp, self.data_dir = tmp, data_dir
        self.procs: list[Proc] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NEMO_")}
        self.env.update(
            NEMO_DATA_DIR=str(data_dir),
            NEMO_SECRETS_DIR=str(tmp / "no-secrets"),
            NEMO_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )

    def _proc(self, args: list[str], env: dict[str, str], name: str) -> Proc:
        proc = Proc(args, env, self.tmp / f"{name}.log")
        self.procs.append(proc)
        return proc

    def redis(self, port: int) -> Proc:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        args = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.tmp),
        ]
        proc = self._proc(args, self.env, f"redis-{port}").start()
        wait_port(port)
        return proc

    def coordinator(self, port: int, **env: str) -> Proc:
        full = {
            **self.env,
            "NEMO_COORDINATOR_BUDGET_SOURCE": "config",
            "NEMO_COORDINATOR_VRAM_BUDGET_MB": "1000",
            "NEMO_COORDINATOR_TICK_S": "0.05",
            "NEMO_COORDINATOR_GRACE_S": "1",
            **env,
        }
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "nemo_server.coordinator.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        proc = self._proc(args, full, f"coordinator-{port}").start()
        wait_http(f"http://127.0.0.1:{port}/readyz")
        return proc

    def holder(self, name: str, port: int, *args: str) -> tuple[Proc, Path]:
        out = self.tmp / f"{name}.jsonl"
        env = {
            **self.env,
            "NEMO_SERVICE_URLS": json.dumps({"coordinator": f"http://127.0.0.1:{port}"}),
        }
        argv = [
            sys.executable,
            str(HERE / "holder_proc.py"),
            "--name",
            name,
            "--out",
            str(out),
            *args,
        ]
        return self._proc(argv, env, name).start(), out

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]


@pytest.fixture
def cluster(tmp_path: Path, data_dir: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, data_dir)
    try:
        yield c
    finally:
        c.close()
