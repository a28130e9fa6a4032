"""Jobs: rows in the service database, run one per worker process so the API stays responsive.

A few dispatcher threads take queued jobs and start each in a fresh `spawn`ed process (no
fork of a threaded server). The child reports progress and its result over a queue; the thread
writes them to the database. Cancelling terminates the process.
"""

from __future__ import annotations

import importlib
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from nemo_server.common.db import Database
from nemo_server.common.errors import Conflict, NotFound
from nemo_server.ml.models import JobRow

log = logging.getLogger("nemo.ml.jobs")

TERMINAL = ("succeeded", "failed", "cancelled")
Finalizer = Callable[[JobRow, dict[str, Any]], dict[str, Any]]
Progress = Callable[[float, str | None], None]


class TaskError(Exception):
    """A failure of a task the user can act on (its message is shown as the job's error)."""


def clean_json(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _child(target: str, payload: dict[str, Any], out: Any, nice: int) -> None:
    """Entry point of a worker process."""
    try:
        os.nice(nice)
    except OSError:
        pass
    module_name, _, func_name = target.partition(":")

    def progress(fraction: float, message: str | None = None) -> None:
        out.put(("progress", max(0.0, min(1.0, float(fraction))), message))

    try:
        func = getattr(importlib.import_module(module_name), func_name)
        out.put(("result", func(payload, progress)))
    except TaskError as exc:
        out.put(("error", str(exc)))
    except Exception as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))


class JobStore:
    """Job rows, scoped by user."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        user_id: str,
        kind: str,
        dataset_id: str | None,
        request: dict,
        runner_id: str | None = None,
    ) -> JobRow:
        row = JobRow(
            runner_id=runner_id,
            id="job_" + uuid.uuid4().hex[:24],
            user_id=user_id,
            kind=kind,
            status="queued",
            progress=0.0,
            dataset_id=dataset_id,
            request=clean_json(request),
        )
        with self.db.session() as session:
            session.add(row)
        return row

    def get(self, user_id: str, job_id: str) -> JobRow:
        with self.db.session() as session:
            row = session.get(JobRow, job_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no job {job_id!r}", param="job_id")
        return row

    def load(self, job_id: str) -> JobRow | None:
        with self.db.session() as session:
            return session.get(JobRow, job_id)

    def list(self, user_id: str, limit: int = 100) -> list[JobRow]:
        with self.db.session() as session:
            query = (
                select(JobRow)
                .where(JobRow.user_id == user_id)
                .order_by(JobRow.created_at.desc())
                .limit(limit)
            )
            return list(session.scalars(query))

    def set(self, job_id: str, *, only_if: tuple[str, ...] | None = None, **values: Any) -> bool:
        """Update a job; with `only_if`, only while its status is one of those. True if done."""
        stmt = update(JobRow).where(JobRow.id == job_id)
        if only_if:
            stmt = stmt.where(JobRow.status.in_(only_if))
        with self.db.session() as session:
            return bool(session.execute(stmt.values(**values)).rowcount)

    def fail_unfinished(self) -> None:
        """On start of the single embedded process: jobs a previous run left queued or running
        can never finish. (With PostgreSQL other replicas may be running theirs: left alone.)"""
        self.set_many(("queued", "running"), "interrupted: the service restarted")

    def set_many(self, statuses: tuple[str, ...], error: str, runner_id: str | None = None) -> None:
        stmt = update(JobRow).where(JobRow.status.in_(statuses))
        if runner_id is not None:
            stmt = stmt.where(JobRow.runner_id == runner_id)
        with self.db.session() as session:
            session.execute(
                stmt.values(status="failed", error=error, finished_at=datetime.now(UTC))
            )


class JobRunner:
    """Runs jobs in worker processes, `workers` at a time."""

    def __init__(
        self,
        store: JobStore,
        *,
        workers: int = 1,
        nice: int = 5,
        target: str = "nemo_server.ml.worker:run_task",
    ) -> None:
        self.store = store
        self.workers = workers
        self.nice = nice
        self.target = target
        self._queue: queue.Queue[tuple[str, dict[str, Any], Finalizer | None, float] | None] = (
            queue.Queue()
        )
        self._procs: dict[str, Any] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._ctx = multiprocessing.get_context("spawn")
        self.runner_id = "run_" + uuid.uuid4().hex[:20]

    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"ml-jobs-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            procs = list(self._procs.items())
            self._cancelled.update(job_id for job_id, _ in procs)
        for _, proc in procs:
            proc.terminate()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.store.set_many(
            ("queued", "running"), "interrupted: the service stopped", self.runner_id
        )

    def submit(
        self,
        job_id: str,
        payload: dict[str, Any],
        finalize: Finalizer | None = None,
        hard_timeout_s: float = 3600.0,
    ) -> None:
        self._queue.put((job_id, payload, finalize, hard_timeout_s))

    def cancel(self, user_id: str, job_id: str) -> JobRow:
        job = self.store.get(user_id, job_id)
        if job.status in TERMINAL:
            raise Conflict(f"job {job_id!r} already {job.status}", param="job_id")
        now = datetime.now(UTC)
        with self._lock:
            self._cancelled.add(job_id)
            proc = self._procs.get(job_id)
        self.store.set(
            job_id,
            only_if=("queued", "running"),
            status="cancelled",
            finished_at=now,
            message="cancelled by the user",
        )
        if proc is not None:
            proc.terminate()
        return self.store.get(user_id, job_id)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job_id, payload, finalize, hard_timeout = item
            try:
                self._run(job_id, payload, finalize, hard_timeout)
            except Exception as exc:  # never let one job kill the dispatcher
                log.exception("job %s crashed the runner", job_id)
                self.store.set(
                    job_id,
                    only_if=("queued", "running"),
                    status="failed",
                    error=f"internal error: {exc}",
                    finished_at=datetime.now(UTC),
                )

    def _run(
        self, job_id: str, payload: dict, finalize: Finalizer | None, hard_timeout: float
    ) -> None:
        started = datetime.now(UTC)
        if not self.store.set(job_id, only_if=("queued",), status="running", started_at=started):
            return  # cancelled while queued
        out = self._ctx.Queue()
        proc = self._ctx.Process(
            target=_child, args=(self.target, payload, out, self.nice), daemon=True
        )
        with self._lock:
            if job_id in self._cancelled:
                return
            proc.start()
            self._procs[job_id] = proc
        deadline = time.monotonic() + hard_timeout
        outcome: tuple[str, Any] | None = None
        last_write = 0.0
        last_check = time.monotonic()
        try:
            while outcome is None:
                if time.monotonic() - last_check > 1.0:
                    last_check = time.monotonic()
                    # A cancel may have reached another replica: the row says so.
                    current = self.store.load(job_id)
                    if current is not None and current.status == "cancelled":
                        with self._lock:
                            self._cancelled.add(job_id)
                        break
                    if last_check > deadline:
                        outcome = ("error", f"job ran past its hard limit of {hard_timeout:.0f} s")
                        break
                try:
                    message = out.get(timeout=0.25)
                except queue.Empty:
                    if proc.is_alive():
                        continue
                    try:  # the result may have landed just before the exit
                        message = out.get(timeout=1.0)
                    except queue.Empty:
                        outcome = ("error", f"worker process exited with code {proc.exitcode}")
                        break
                if message[0] == "progress":
                    now = time.monotonic()
                    if now - last_write > 0.3:
                        last_write = now
                        self.store.set(
                            job_id, only_if=("running",), progress=message[1], message=message[2]
                        )
                else:
                    outcome = (message[0], message[1])
        finally:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)
            with self._lock:
                self._procs.pop(job_id, None)
                cancelled = job_id in self._cancelled
        if cancelled:
            return
        now = datetime.now(UTC)
        kind, value = outcome
        if kind == "result":
            try:
                result = clean_json(finalize(self.store.load(job_id), value) if finalize else value)
            except Exception as exc:
                log.exception("finalizing job %s failed", job_id)
                kind, value = "error", f"storing the result failed: {exc}"
            else:
                self.store.set(
                    job_id,
                    only_if=("running",),
                    status="succeeded",
                    progress=1.0,
                    result=result,
                    finished_at=now,
                    message="done",
                )
                return
        self.store.set(
            job_id,
            only_if=("running",),
            status="failed",
            error=str(value),
            finished_at=now,
            message="failed",
        )
