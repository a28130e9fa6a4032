"""Where lease state lives: a registry of backend builders (memory, redis)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nemo_server.common.gpu_backend import EventSink, LeaseBackend
from nemo_server.common.gpu_state import StateConfig
from nemo_server.coordinator.settings import CoordinatorSettings

BackendBuilder = Callable[[CoordinatorSettings, StateConfig, EventSink | None], LeaseBackend]


def _memory(
    settings: CoordinatorSettings, config: StateConfig, on_event: EventSink | None
) -> LeaseBackend:
    from nemo_server.coordinator.backends.memory import MarkedMemoryBackend

    state_dir = settings.state_dir or Path(settings.common.data_dir) / "coordinator"
    return MarkedMemoryBackend(config, state_dir, on_event=on_event)


def _redis(
    settings: CoordinatorSettings, config: StateConfig, on_event: EventSink | None
) -> LeaseBackend:
    from nemo_server.coordinator.backends.redis import RedisLeaseBackend

    assert settings.common.redis_url
    return RedisLeaseBackend(
        settings.common.redis_url,
        config,
        key=settings.redis_key,
        poll_s=settings.redis_poll_s,
        on_event=on_event,
    )


BACKENDS: dict[str, BackendBuilder] = {"memory": _memory, "redis": _redis}


def backend_name(settings: CoordinatorSettings) -> str:
    """`redis` when `NEMO_REDIS_URL` is set, else `memory`."""
    return "redis" if settings.common.redis_url else "memory"


def build_backend(
    settings: CoordinatorSettings, config: StateConfig, on_event: EventSink | None = None
) -> LeaseBackend:
    return BACKENDS[backend_name(settings)](settings, config, on_event)
