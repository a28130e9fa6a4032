"""Settings of the transcription service (env prefix `NEMO_TRANSCRIPTION_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nemo_server.common.settings import ServiceSettings

BUNDLED_MODEL = "whisper-tiny.en"


class TranscriptionSettings(ServiceSettings):
    """Everything the transcription service reads at start."""

    model_config = SettingsConfigDict(env_prefix="NEMO_TRANSCRIPTION_", extra="ignore")

    max_body_bytes: int = Field(
        default=100 << 20,
        ge=1024,
        description="Largest upload accepted, in bytes (413 beyond it).",
    )
    default_model: str = Field(
        default=BUNDLED_MODEL,
        description="Model used when a request names none or names `whisper-1`.",
    )
    models: dict[str, Path] = Field(
        default_factory=dict,
        description=(
            "Extra CTranslate2 Whisper model directories by name, JSON "
            '(`{"large-v3": "/models/faster-whisper-large-v3"}`); the bundled tiny.en is always there.'
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where ASR runs; `auto` picks CUDA when CTranslate2 sees a GPU."
    )
    compute_type: str = Field(
        default="default",
        description="CTranslate2 compute type; `default` is int8 on CPU and float16 on CUDA.",
    )
    cpu_threads: int = Field(
        default=0, ge=0, description="CPU threads for ASR (0: CTranslate2 default)."
    )
    beam_size: int = Field(default=5, ge=1, le=10, description="Beam size for file transcription.")
    vad_filter: bool = Field(
        default=True, description="Skip non-speech with Silero VAD (shipped in faster-whisper)."
    )
    preload: bool = Field(
        default=True, description="Load the default model when the service starts."
    )
    diarizer: Literal["resemblyzer", "pyannote"] = Field(
        default="resemblyzer", description="Diarization engine."
    )
    pyannote_path: Path | None = Field(
        default=None,
        description="Directory of a pyannote pipeline (its `config.yaml` and weights) for `diarizer=pyannote`.",
    )
    max_speakers_limit: int = Field(
        default=10, ge=2, le=32, description="Upper bound when the number of speakers is estimated."
    )
    decode_timeout_s: float = Field(
        default=120.0, gt=0, description="Wall-clock limit of one decoding subprocess."
    )
    decode_memory_mb: int = Field(
        default=2048, ge=256, description="Address-space limit of the decoding subprocess (MiB)."
    )
    max_audio_s: float = Field(
        default=4 * 3600.0, gt=0, description="Longest audio accepted, in seconds (413 beyond it)."
    )
    max_sync_audio_s: float = Field(
        default=30 * 60.0,
        gt=0,
        description="Longest audio `/v1/audio/transcriptions` takes; longer audio goes to a job.",
    )
    job_chunk_s: float = Field(
        default=30.0, ge=5, le=600, description="Audio per job unit (the pre-emption granularity)."
    )
    job_claim_s: float = Field(
        default=60.0,
        ge=1,
        description=(
            "How long a job stays claimed by the process running it without renewal; another "
            "replica takes over a job whose claim ran out."
        ),
    )
    job_workers: int = Field(default=1, ge=1, le=8, description="Jobs run at the same time.")
    gpu_leases: Literal["auto", "coordinator", "local"] = Field(
        default="auto",
        description=(
            "Lease client: `coordinator` asks the GPU coordinator, `local` an in-process stand-in; "
            "`auto` uses the coordinator only when ASR runs on CUDA."
        ),
    )
    gpu_vram_mb: int = Field(default=1000, ge=1, description="VRAM asked for an ASR lease (MiB).")
    stream_silence_s: float = Field(
        default=0.5, gt=0, description="Live: silence that closes an utterance (final segment)."
    )
    stream_max_utterance_s: float = Field(
        default=15.0, gt=1, description="Live: longest utterance before it is cut into a final."
    )
    stream_partial_every_s: float = Field(
        default=1.0, gt=0, description="Live: audio between two partial results."
    )
    stream_beam_size: int = Field(
        default=1, ge=1, le=10, description="Live: beam size of final segments (1 is fastest)."
    )
    stream_speaker_threshold: float = Field(
        default=0.75,
        gt=0,
        lt=1,
        description="Live: cosine similarity below which an utterance starts a new speaker.",
    )
