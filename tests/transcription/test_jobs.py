"""Durable jobs: progress, results, cancel, restart, and yielding the GPU (fake engines)."""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from nemo_server.common.gpu import LocalLeaseClient, Priority
from nemo_server.common.testing import BOB, internal_headers
from nemo_server.transcription.engines.base import AsrOptions, AsrResult
from nemo_server.transcription.engines.fake import FakeAsr
from tests.transcription.conftest import tone_wav, wait_for

LEVELS = [round(0.10 + 0.01 * i, 2) for i in range(30)]  # 30 s of audio, 6+ chunks of 5 s
WORDS = [f"w{round(level * 100)}" for level in LEVELS]


class SlowAsr(FakeAsr):
    """The fake ASR, taking `delay` seconds per call (so a job can be caught mid-way)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def transcribe(self, audio: np.ndarray, options: AsrOptions) -> AsrResult:
        time.sleep(self.delay)
        return super().transcribe(audio, options)


def submit(client: TestClient, headers: dict[str, str], **form: Any) -> dict[str, Any]:
    files = {"file": ("long.wav", tone_wav(LEVELS), "audio/wav")}
    response = client.post("/v1/transcriptions/jobs", headers=headers, files=files, data=form)
    assert response.status_code == 202, response.text
    return response.json()


def job(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    return client.get(f"/v1/transcriptions/jobs/{job_id}", headers=headers).json()


def result_words(client: TestClient, headers: dict[str, str], job_id: str) -> list[str]:
    response = client.get(f"/v1/transcriptions/jobs/{job_id}/result", headers=headers)
    assert response.status_code == 200, response.text
    return [w["word"] for w in response.json()["words"]]


def test_job_runs_to_completion_with_progress(client, headers, common_settings):
    created = submit(client, headers)
    assert created["status"] in ("queued", "running") and created["duration"] == 30.0
    done = wait_for(
        lambda: (j := job(client, headers, created["id"]))["status"] == "completed" and j
    )
    assert done["progress"] == 1.0 and done["segments"] >= 10
    assert result_words(client, headers, created["id"]) == WORDS
    verbose = client.get(f"/v1/transcriptions/jobs/{created['id']}/result", headers=headers)
    assert verbose.json()["language"] == "english" and verbose.json()["duration"] == 30.0
    srt = client.get(
        f"/v1/transcriptions/jobs/{created['id']}/result",
        params={"response_format": "srt"},
        headers=headers,
    )
    assert srt.text.startswith("1\n00:00:00,100 --> ")
    listed = client.get("/v1/transcriptions/jobs", headers=headers).json()["data"]
    assert [j["id"] for j in listed] == [created["id"]]
    bob = internal_headers(common_settings, BOB)
    assert client.get(f"/v1/transcriptions/jobs/{created['id']}", headers=bob).status_code == 404
    assert client.get("/v1/transcriptions/jobs", headers=bob).json()["data"] == []


def test_diarized_job_labels_speakers_across_chunks(client, headers):
    files = {"file": ("d.wav", tone_wav([0.2, 0.3, 0.8] * 4), "audio/wav")}
    created = client.post(
        "/v1/transcriptions/jobs", headers=headers, files=files, data={"diarize": "true"}
    ).json()
    wait_for(lambda: job(client, headers, created["id"])["status"] == "completed")
    words = client.get(f"/v1/transcriptions/jobs/{created['id']}/result", headers=headers).json()
    assert [w["speaker"] for w in words["words"]] == ["SPEAKER_00", "SPEAKER_00", "SPEAKER_01"] * 4


def test_cancel_stops_a_job(make_client, headers):
    with make_client(asr_engine=SlowAsr(1.0)) as client:
        created = submit(client, headers)
        cancelled = client.post(f"/v1/transcriptions/jobs/{created['id']}/cancel", headers=headers)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = client.post(f"/v1/transcriptions/jobs/{created['id']}/cancel", headers=headers)
        assert again.status_code == 409
        result = client.get(f"/v1/transcriptions/jobs/{created['id']}/result", headers=headers)
        assert result.status_code == 409
        missing = client.post("/v1/transcriptions/jobs/job_nope/cancel", headers=headers)
        assert missing.status_code == 404


def test_job_survives_a_restart_without_losing_or_repeating_segments(make_client, headers):
    with make_client(asr_engine=SlowAsr(0.4)) as client:
        created = submit(client, headers)
        wait_for(lambda: job(client, headers, created["id"])["processed"] > 0)
    # The service stopped mid-job; a new one on the same data dir picks it up.
    with make_client() as client:
        done = wait_for(
            lambda: (j := job(client, headers, created["id"]))["status"] == "completed" and j
        )
        assert 0 < done["segments"]
        assert result_words(client, headers, created["id"]) == WORDS


def test_job_yields_the_gpu_to_foreground_work_and_resumes(make_client, settings, headers):
    leases = LocalLeaseClient(budget_mb=settings.gpu_vram_mb, grace_s=30)
    with make_client(asr_engine=SlowAsr(0.2), lease_client=leases) as client:
        created = submit(client, headers)
        wait_for(lambda: job(client, headers, created["id"])["processed"] > 0)
        # Foreground work needs the whole budget: the job must stop at a chunk boundary.
        acquire = functools.partial(
            leases.acquire, "llm:test", priority=Priority.FOREGROUND, vram_mb=settings.gpu_vram_mb
        )
        lease = client.portal.call(acquire)
        paused = wait_for(
            lambda: (j := job(client, headers, created["id"]))["status"] == "waiting_gpu" and j
        )
        time.sleep(0.6)  # several fake chunks' worth: nothing may run while the GPU is taken
        still = job(client, headers, created["id"])
        assert still["processed"] == paused["processed"] < 30
        assert still["status"] == "waiting_gpu" and still["preemptions"] == 1
        client.portal.call(lease.release)
        done = wait_for(
            lambda: (j := job(client, headers, created["id"]))["status"] == "completed" and j
        )
        assert done["preemptions"] == 1
        assert result_words(client, headers, created["id"]) == WORDS


def test_one_replica_runs_a_job_and_another_takes_over_when_it_stops(
    make_client, settings, headers
):
    fast = settings.model_copy(update={"job_claim_s": 6.0})
    second_asr = FakeAsr()
    first_replica = make_client(settings=fast, asr_engine=SlowAsr(0.3))
    first = first_replica.__enter__()
    try:
        created = submit(first, headers)
        with make_client(settings=fast, asr_engine=second_asr) as second:
            wait_for(lambda: job(first, headers, created["id"])["processed"] >= 10)
            assert second_asr.calls == 0  # the job is claimed by the first replica
            first_replica.__exit__(None, None, None)  # it stops, releasing its claim
            first_replica = None
            done = wait_for(
                lambda: (j := job(second, headers, created["id"]))["status"] == "completed" and j
            )
            assert second_asr.calls > 0 and done["progress"] == 1.0
            assert result_words(second, headers, created["id"]) == WORDS
    finally:
        if first_replica is not None:
            first_replica.__exit__(None, None, None)
