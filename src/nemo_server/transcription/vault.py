"""Job audio at rest: AES-256-GCM encrypted files in the data dir.

A job's decoded audio waits on disk until the job finishes; like the database, it is
encrypted, with a key derived from the `db_key` secret. Each 1 MiB chunk has its own nonce
and is bound to its job id and position, so chunks cannot be swapped between files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from nemo_server.transcription.settings import TranscriptionSettings

_CHUNK = 1 << 20
_MAGIC = b"NTA1"


class AudioVault:
    """Stores float32 16 kHz audio per job id, encrypted."""

    def __init__(self, directory: Path, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.directory = directory
        self._aead = AESGCM(key)

    @classmethod
    def for_settings(cls, settings: TranscriptionSettings) -> AudioVault:
        secret = settings.common.secrets().get("db_key")
        key = hashlib.sha256(b"nemo-transcription-job-audio\0" + secret.encode()).digest()
        return cls(settings.audio_dir(), key)

    def path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.audio"

    def exists(self, job_id: str) -> bool:
        return self.path(job_id).exists()

    def save(self, job_id: str, audio: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = audio.astype("<f4").tobytes()
        tmp = self.path(job_id).with_suffix(".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(_MAGIC)
            for index, at in enumerate(range(0, len(data), _CHUNK)):
                nonce = os.urandom(12)
                sealed = self._aead.encrypt(nonce, data[at : at + _CHUNK], _aad(job_id, index))
                out.write(nonce + struct.pack("<I", len(sealed)) + sealed)
        tmp.replace(self.path(job_id))

    def load(self, job_id: str) -> np.ndarray:
        """The job's audio; raises ValueError if the file is damaged or not this job's."""
        from cryptography.exceptions import InvalidTag

        raw = self.path(job_id).read_bytes()
        if raw[:4] != _MAGIC:
            raise ValueError("job audio file has an unknown format")
        parts, at, index = [], 4, 0
        while at < len(raw):
            nonce, (size,) = raw[at : at + 12], struct.unpack("<I", raw[at + 12 : at + 16])
            sealed = raw[at + 16 : at + 16 + size]
            try:
                parts.append(self._aead.decrypt(nonce, sealed, _aad(job_id, index)))
            except InvalidTag:
                raise ValueError("job audio file is damaged or belongs to another job") from None
            at, index = at + 16 + size, index + 1
        return np.frombuffer(b"".join(parts), dtype="<f4").astype(np.float32)

    def delete(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(job_id).unlink()


def _aad(job_id: str, index: int) -> bytes:
    return f"{job_id}:{index}".encode()
