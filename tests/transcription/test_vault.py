"""Job audio at rest is encrypted and bound to its job."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from nemo_server.common.db import open_service_database
from nemo_server.transcription.models import JobAudio
from nemo_server.transcription.store import TranscriptStore
from nemo_server.transcription.vault import AudioVault


def test_job_audio_is_encrypted_and_bound_to_its_job(settings):
    db = open_service_database(
        "transcription", settings.common, "nemo_server.transcription:migrations"
    )
    try:
        store = TranscriptStore(db)
        transcript = store.create_transcript(
            "u1", source="job", model="m", duration_s=0.0, diarized=False, complete=False
        )
        jobs = [store.create_job("u1", transcript.id, 25.0, {}) for _ in range(2)]
        vault = AudioVault.for_settings(settings, db)
        audio = np.random.default_rng(1).normal(0, 0.2, 400_000).astype(np.float32)  # 2 chunks
        vault.save(jobs[0].id, audio)
        assert vault.exists(jobs[0].id) and not vault.exists(jobs[1].id)
        with db.session() as s:
            blobs = s.scalars(select(JobAudio.data).order_by(JobAudio.idx)).all()
        assert len(blobs) == 2 and audio[:1000].tobytes() not in blobs[0]
        assert np.array_equal(vault.load(jobs[0].id), audio)
        with db.session() as s:  # chunks moved to another job do not decrypt there
            s.execute(update(JobAudio).values(job_id=jobs[1].id))
        with pytest.raises(ValueError, match="another job"):
            vault.load(jobs[1].id)
        with pytest.raises(ValueError, match="missing"):
            vault.load(jobs[0].id)
        vault.delete(jobs[1].id)
        assert not vault.exists(jobs[1].id)
    finally:
        db.dispose()
