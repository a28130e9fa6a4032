"""The llama.cpp engine with the real bundled SmolLM2: batching, sampling, grammar, slots."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import pytest

from nemo_server.llm.catalog import ModelCatalog
from nemo_server.llm.engines.base import (
    EngineOptions,
    GenerationChunk,
    GenerationRequest,
    GrammarError,
    RequestPriority,
    SamplingParams,
)
from nemo_server.llm.engines.llama_cpp import LlamaCppModel
from nemo_server.llm.settings import LlmSettings

pytestmark = pytest.mark.slow
# A grammar that never completes: the answer ends by max_tokens, never early.
LONG = "root ::= [a-z ] root"


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaCppModel]:
    spec = ModelCatalog(LlmSettings()).lookup("smollm2")
    # One thread: spin-waiting llama.cpp threads crawl on a shared, busy CPU.
    options = EngineOptions(
        n_slots=2, ctx_per_slot=512, background_slots=1, n_threads=1, prefill_chunk=8
    )
    loaded = LlamaCppModel(spec, options)
    yield loaded
    loaded.close()


def _request(model: LlamaCppModel, text: str = "Name a colour.", **kw: object) -> GenerationRequest:
    sampling = SamplingParams(
        temperature=float(kw.pop("temperature", 0.7)),  # type: ignore[arg-type]
        seed=kw.pop("seed", None),  # type: ignore[arg-type]
        grammar=kw.pop("grammar", None),  # type: ignore[arg-type]
    )
    prompt = model.render_chat([{"role": "user", "content": text}])
    return GenerationRequest(model.tokenize(prompt), sampling=sampling, **kw)  # type: ignore[arg-type]


async def _run(model: LlamaCppModel, request: GenerationRequest) -> list[GenerationChunk]:
    return [chunk async for chunk in model.generate(request)]


def test_chat_template_comes_from_the_gguf(model: LlamaCppModel) -> None:
    prompt = model.render_chat([{"role": "user", "content": "Hi"}])
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nHi<|im_end|>" in prompt
    assert model.device == "cpu" and model.n_ctx == 512


async def test_same_seed_same_text(model: LlamaCppModel) -> None:
    a = await _run(model, _request(model, seed=42, max_tokens=12))
    b = await _run(model, _request(model, seed=42, max_tokens=12))
    assert "".join(c.text for c in a) == "".join(c.text for c in b)
    assert a[-1].finish_reason in ("stop", "length") and a[-1].completion_tokens <= 12


async def test_max_tokens_and_stop_strings(model: LlamaCppModel) -> None:
    chunks = await _run(model, _request(model, grammar=LONG, max_tokens=5))
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("length", 5)
    fixed = 'root ::= "alpha beta gamma delta"'
    chunks = await _run(model, _request(model, grammar=fixed, max_tokens=20, stop=[" gam"]))
    assert "".join(c.text for c in chunks) == "alpha beta"
    assert chunks[-1].finish_reason == "stop"


async def test_json_schema_is_enforced(model: LlamaCppModel) -> None:
    schema = {
        "type": "object",
        "properties": {
            "colour": {"type": "string", "enum": ["red", "green", "blue"]},
            "bright": {"type": "boolean"},
        },
        "required": ["colour", "bright"],
    }
    grammar = model.compile_json_schema(schema)
    chunks = await _run(
        model,
        _request(
            model, "Give a colour and a count.", grammar=grammar, max_tokens=60, temperature=0
        ),
    )
    value = json.loads("".join(c.text for c in chunks))
    assert value["colour"] in ("red", "green", "blue") and isinstance(value["bright"], bool)
    with pytest.raises(GrammarError):
        model.compile_json_schema({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})


async def test_concurrent_requests_decode_together(model: LlamaCppModel) -> None:
    first = model.generate(_request(model, grammar=LONG, max_tokens=120))
    await first.__anext__()
    # The second request streams while the first is still running: batching, not a queue.
    # Its prompt (~30 tokens) goes in chunks of 8 beside the first one's tokens.
    fixed = 'root ::= "alpha beta gamma"'
    second = await _run(
        model, _request(model, "Say three words " * 3, grammar=fixed, max_tokens=30)
    )
    assert "".join(c.text for c in second) == "alpha beta gamma"
    assert model.stats()["active"] == 1  # the first one goes on
    await first.aclose()


async def test_a_closed_stream_frees_its_slot(model: LlamaCppModel) -> None:
    stream = model.generate(_request(model, grammar=LONG, max_tokens=400))
    await stream.__anext__()
    assert model.stats()["active"] == 1
    await stream.aclose()  # what a client disconnect does
    for _ in range(200):
        if model.stats() == {"active": 0, "queued": 0}:
            break
        await asyncio.sleep(0.02)
    assert model.stats() == {"active": 0, "queued": 0}


async def test_background_work_leaves_a_slot_for_users(model: LlamaCppModel) -> None:
    bg = RequestPriority.BACKGROUND
    streams = [
        model.generate(_request(model, grammar=LONG, max_tokens=300, priority=bg)) for _ in range(2)
    ]
    first = asyncio.ensure_future(streams[0].__anext__())
    second = asyncio.ensure_future(streams[1].__anext__())
    await first
    assert model.stats() == {"active": 1, "queued": 1}  # one slot of two for background
    user = await _run(model, _request(model, grammar=LONG, max_tokens=3))
    assert user[-1].completion_tokens == 3 and not second.done()
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second
    for stream in streams:
        await stream.aclose()


async def test_more_requests_than_slots_queue_and_all_finish(model: LlamaCppModel) -> None:
    fixed = 'root ::= "one two"'
    runs = [_run(model, _request(model, grammar=fixed, max_tokens=20)) for _ in range(5)]
    results = await asyncio.gather(*runs)
    assert ["".join(c.text for c in chunks) for chunks in results] == ["one two"] * 5
    assert model.stats() == {"active": 0, "queued": 0}


async def test_multibyte_text_is_never_split(model: LlamaCppModel) -> None:
    fixed = 'root ::= "café 😀 naïve"'
    chunks = await _run(model, _request(model, grammar=fixed, max_tokens=40, stop=["ï"]))
    assert "".join(c.text for c in chunks) == "café 😀 na"
    assert all("\ufffd" not in c.text for c in chunks)


async def test_waiting_users_go_before_waiting_background_work(model: LlamaCppModel) -> None:
    busy = [model.generate(_request(model, grammar=LONG, max_tokens=300)) for _ in range(2)]
    for stream in busy:
        await stream.__anext__()  # both slots taken by users
    background = model.generate(
        _request(model, grammar=LONG, max_tokens=300, priority=RequestPriority.BACKGROUND)
    )
    bg_first = asyncio.ensure_future(background.__anext__())
    user = model.generate(_request(model, grammar=LONG, max_tokens=300))
    user_first = asyncio.ensure_future(user.__anext__())
    for _ in range(100):
        if model.stats()["queued"] == 2:
            break
        await asyncio.sleep(0.01)
    assert model.stats() == {"active": 2, "queued": 2}
    await busy[0].aclose()  # one slot frees: the user who came later gets it
    await user_first
    assert not bg_first.done() and model.stats() == {"active": 2, "queued": 1}
    bg_first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await bg_first
    for stream in (busy[1], user, background):
        await stream.aclose()
