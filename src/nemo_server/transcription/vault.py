"""Job audio at rest: AES-256-GCM encrypted chunks in the service database.

A job's decoded audio waits until the job finishes. It lives in the database (so any replica
can resume the job) and is encrypted with a key derived from the `db_key` secret, also on
PostgreSQL. Each 1 MiB chunk has its own nonce and is bound to its job id and position, so
chunks cannot be swapped between jobs or reordered.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from sqlalchemy import delete, func, select

from nemo_server.common.db import Database
from nemo_server.transcription.models import JobAudio
from nemo_server.transcription.settings import TranscriptionSettings

_CHUNK = 1 << 20


class AudioVault:
    """Stores float32 16 kHz audio per job id, encrypted."""

    def __init__(self, db: Database, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.db = db
        self._aead = AESGCM(key)

    @classmethod
    def for_settings(cls, settings: TranscriptionSettings, db: Database) -> AudioVault:
        secret = settings.common.secrets().get("db_key")
        key = hashlib.sha256(b"nemo-transcription-job-audio\0" + secret.encode()).digest()
        return cls(db, key)

    def exists(self, job_id: str) -> bool:
        with self.db.session() as s:
            count = s.scalar(
                select(func.count()).select_from(JobAudio).where(JobAudio.job_id == job_id)
            )
        return bool(count)

    def save(self, job_id: str, audio: np.ndarray) -> None:
        data = audio.astype("<f4").tobytes()
        with self.db.session() as s:
            for index, at in enumerate(range(0, len(data), _CHUNK)):
                nonce = os.urandom(12)
                sealed = self._aead.encrypt(nonce, data[at : at + _CHUNK], _aad(job_id, index))
                s.add(JobAudio(job_id=job_id, idx=index, data=nonce + sealed))

    def load(self, job_id: str) -> np.ndarray:
        """The job's audio; raises ValueError if it is missing, damaged or not this job's."""
        from cryptography.exceptions import InvalidTag

        with self.db.session() as s:
            rows = s.execute(
                select(JobAudio.idx, JobAudio.data)
                .where(JobAudio.job_id == job_id)
                .order_by(JobAudio.idx)
            ).all()
        if not rows:
            raise ValueError("job audio is missing")
        parts = []
        for expected, (index, blob) in enumerate(rows):
            try:
                if index != expected:
                    raise InvalidTag
                parts.append(self._aead.decrypt(blob[:12], blob[12:], _aad(job_id, index)))
            except InvalidTag:
                raise ValueError("job audio is damaged or belongs to another job") from None
        return np.frombuffer(b"".join(parts), dtype="<f4").astype(np.float32)

    def delete(self, job_id: str) -> None:
        with self.db.session() as s:
            s.execute(delete(JobAudio).where(JobAudio.job_id == job_id))


def _aad(job_id: str, index: int) -> bytes:
    return f"{job_id}:{index}".encode()
