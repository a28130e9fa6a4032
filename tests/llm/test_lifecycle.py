"""Model lifecycle: load on first use, keep-alive unload, admin endpoints, the GPU lease."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from nemo_server.common.gpu import LocalLeaseClient, Priority
from nemo_server.common.testing import ADMIN, internal_headers
from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.engines import EngineBackend
from nemo_server.llm.engines.fake import FakeModel
from nemo_server.llm.lifecycle import ModelManager
from nemo_server.llm.settings import LlmSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gpu_backend(built: list[FakeModel]) -> EngineBackend:
    def build(spec, options):  # type: ignore[no-untyped-def]
        model = FakeModel(spec.name, device="gpu" if options.gpu else "cpu", vram_mb=600)
        built.append(model)
        return model

    return EngineBackend(build, lambda: True, lambda spec, options: 600)


def test_admin_load_status_unload(
    client: TestClient, alice: dict[str, str], settings: LlmSettings
) -> None:
    admin = internal_headers(settings.common, ADMIN)
    assert client.post("/v1/llm/models/smollm2/load", headers=alice).status_code == 403
    r = client.post("/v1/llm/models/smollm2/load", headers=admin)
    assert r.status_code == 200 and r.json()["id"] == "smollm2" and r.json()["device"] == "cpu"
    status = client.get("/v1/llm/status", headers=admin).json()
    assert [m["id"] for m in status["loaded"]] == ["smollm2"]
    assert client.get("/v1/models/smollm2", headers=alice).json()["loaded"] is True
    r = client.post("/v1/llm/models/smollm2/unload", headers=admin)
    assert r.json() == {"id": "smollm2", "unloaded": True}
    assert client.get("/v1/llm/status", headers=admin).json()["loaded"] == []
    assert client.post("/v1/llm/models/nope/load", headers=admin).status_code == 404


async def test_load_on_first_use_and_unload_after_keep_alive(settings: LlmSettings) -> None:
    settings.keep_alive_s = 60
    built: list[FakeModel] = []

    def build(spec, options):  # type: ignore[no-untyped-def]
        built.append(FakeModel(spec.name))
        return built[-1]

    backend = EngineBackend(build, lambda: False, lambda s, o: 0)
    clock = Clock()
    manager = ModelManager(settings, ModelCatalog(settings), backend, clock=clock)
    spec = manager.catalog.resolve("smollm2")
    assert manager.loaded() == []
    async with manager.use(spec) as model, manager.use(spec) as again:
        assert model is again and len(built) == 1  # concurrent users share one load
        clock.now += 3600
        assert await manager.reap() == []  # busy models are never unloaded
    clock.now += 59
    assert await manager.reap() == []
    clock.now += 2
    assert await manager.reap() == ["smollm2"]
    assert built[0].closed and not manager.is_loaded("smollm2")


async def test_gpu_model_holds_a_lease_sized_to_its_vram(settings: LlmSettings) -> None:
    leases = LocalLeaseClient(budget_mb=1000)
    built: list[FakeModel] = []
    manager = ModelManager(
        settings, ModelCatalog(settings), _gpu_backend(built), lease_client=leases
    )
    spec = manager.catalog.resolve("smollm2")
    await manager.load(spec)
    status = await leases.backend.status()
    assert [(x["holder"], x["vram_mb"]) for x in status["leases"]] == [("llm:smollm2", 600)]
    assert manager.loaded()[0]["device"] == "gpu"
    await manager.unload("smollm2")
    assert (await leases.backend.status())["leases"] == []
    await leases.aclose()


async def test_gpu_model_yields_to_foreground_work(settings: LlmSettings) -> None:
    leases = LocalLeaseClient(budget_mb=1000, grace_s=5)
    built: list[FakeModel] = []
    manager = ModelManager(
        settings, ModelCatalog(settings), _gpu_backend(built), lease_client=leases
    )
    await manager.load(manager.catalog.resolve("smollm2"))
    # A foreground job needs VRAM the model holds: the model is unloaded and its lease released.
    lease = await asyncio.wait_for(
        leases.acquire("transcription:live", priority=Priority.FOREGROUND, vram_mb=800), 10
    )
    assert not manager.is_loaded("smollm2") and built[0].closed
    await lease.release()
    await manager.close()
    await leases.aclose()


def test_unload_is_refused_while_a_request_runs(settings: LlmSettings) -> None:
    import threading

    from fastapi.testclient import TestClient

    from nemo_server.llm.app import create_app

    slow = FakeModel(token_delay_s=0.2)
    admin = internal_headers(settings.common, ADMIN)
    with TestClient(create_app(settings, engine=slow)) as c:
        c.post("/v1/llm/models/smollm2/load", headers=admin)
        result: dict[str, object] = {}

        def chat() -> None:
            body = {"messages": [{"role": "user", "content": "hi"}]}
            result["r"] = c.post("/v1/chat/completions", headers=admin, json=body)

        worker = threading.Thread(target=chat)
        worker.start()
        for _ in range(100):
            if slow.active:
                break
            threading.Event().wait(0.02)
        busy = c.post("/v1/llm/models/smollm2/unload", headers=admin)
        assert busy.status_code == 409
        worker.join(10)
        assert result["r"].status_code == 200  # type: ignore[attr-defined]


async def test_a_model_gone_mid_generation_is_a_503() -> None:
    import contextlib

    import pytest

    from nemo_server.common.errors import ServiceUnavailable
    from nemo_server.llm.service import Run

    async def chunks():  # type: ignore[no-untyped-def]
        raise RuntimeError("the model was unloaded")
        yield

    run = Run("smollm2", 3, chunks(), contextlib.AsyncExitStack())
    with pytest.raises(ServiceUnavailable, match="unloaded"):
        await run.collect()
