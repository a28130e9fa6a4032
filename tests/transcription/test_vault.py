"""Job audio at rest is encrypted and bound to its job."""

from __future__ import annotations

import numpy as np
import pytest

from nemo_server.transcription.vault import AudioVault


def test_job_audio_is_encrypted_and_bound_to_its_job(settings):
    vault = AudioVault.for_settings(settings)
    audio = np.random.default_rng(1).normal(0, 0.2, 400_000).astype(np.float32)  # > 1 chunk
    vault.save("job_a", audio)
    stored = vault.path("job_a").read_bytes()
    assert audio[:1000].tobytes() not in stored
    assert np.array_equal(vault.load("job_a"), audio)
    vault.path("job_b").write_bytes(stored)  # a file copied under another job's name
    with pytest.raises(ValueError, match="another job"):
        vault.load("job_b")
    damaged = bytearray(stored)
    damaged[100] ^= 1
    vault.path("job_a").write_bytes(bytes(damaged))
    with pytest.raises(ValueError):
        vault.load("job_a")
    vault.delete("job_a")
    assert not vault.exists("job_a")
    vault.delete("job_a")  # idempotent
