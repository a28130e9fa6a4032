"""`nemo up`'s supervisor: one process per service, restarted with back-off when it crashes.

Each child's output goes to `<data dir>/logs/<service>.log` and, prefixed, to the console.
SIGINT or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nemo_server.common.services import ServiceSpec

log = logging.getLogger("nemo.supervisor")

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
STOP_GRACE_S = 10.0


@dataclass
class Child:
    spec: ServiceSpec
    host: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    thread: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self,
        specs: list[ServiceSpec],
        host: str,
        log_dir: Path,
        port_offset: int = 0,
        *,
        echo: bool = True,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.children = [Child(spec, host, log_dir / f"{spec.name}.log") for spec in specs]
        self.port_offset = port_offset
        self.echo = echo
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def command(self, child: Child) -> list[str]:
        return [
            sys.executable,
            "-m",
            "nemo_server",
            "serve",
            child.spec.name,
            "--host",
            child.host,
            "--port",
            str(child.spec.port + self.port_offset),
        ]

    def start(self) -> None:
        for child in self.children:
            child.thread = threading.Thread(target=self._run, args=(child,), daemon=True)
            child.thread.start()

    def _run(self, child: Child) -> None:
        backoff = BACKOFF_START_S
        while not self.stopping.is_set():
            started = time.monotonic()
            with self._lock:
                if self.stopping.is_set():
                    return
                child.process = subprocess.Popen(
                    self.command(child),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
                )
            log.info("started %s (pid %d)", child.spec.name, child.process.pid)
            assert child.process.stdout is not None
            self._pump(child, child.process.stdout)
            code = child.process.wait()
            if self.stopping.is_set():
                return
            ran = time.monotonic() - started
            if ran > HEALTHY_AFTER_S:
                backoff = BACKOFF_START_S
            child.restarts += 1
            log.error(
                "service %s exited with code %s after %.1fs; restart %d in %.0fs (log: %s)",
                child.spec.name,
                code,
                ran,
                child.restarts,
                backoff,
                child.log_path,
            )
            if self.stopping.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _pump(self, child: Child, stream: IO[bytes]) -> None:
        prefix = f"{child.spec.name:>13} | "
        with child.log_path.open("ab") as out:
            for line in iter(stream.readline, b""):
                out.write(line)
                out.flush()
                if self.echo:
                    sys.stderr.write(prefix + line.decode(errors="replace"))

    def stop(self) -> None:
        """Stop every child: SIGTERM, then SIGKILL after the grace period."""
        with self._lock:
            self.stopping.set()
        running = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in running:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in %.0fs; killing", process.pid, STOP_GRACE_S)
                _signal(process, signal.SIGKILL)
                process.wait()
        for child in self.children:
            if child.thread:
                child.thread.join(timeout=2)

    def wait(self) -> None:
        """Block until SIGINT or SIGTERM, then stop everything."""

        def _handler(signum: int, _frame: object) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)
        while not self.stopping.wait(0.5):
            pass
        self.stop()


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
