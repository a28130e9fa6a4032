"""Continuous batching over llama.cpp's low-level API.

A single thread owns the llama context. Each step it admits waiting requests into free slots
(highest priority first), puts every running sequence's next token (or a chunk of a new
prompt) into one `llama_batch`, calls `llama_decode` once, and samples each sequence from its
own logits row with its own sampler chain (temperature, top_p, seed, grammar). A request that
finishes or is cancelled leaves at the next step and its KV cells are dropped, so a new request
starts decoding while the others go on. ctypes releases the GIL during `llama_decode`.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import heapq
import itertools
import random
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nemo_server.llm.engines.base import (
    GenerationChunk,
    GenerationRequest,
    GrammarError,
    RequestPriority,
)


class Sampler:
    """One request's llama.cpp sampler chain: grammar, top_p, temperature, seeded draw."""

    def __init__(
        self,
        lib: Any,
        vocab: Any,
        *,
        temperature: float,
        top_p: float,
        seed: int | None,
        grammar: str | None,
    ) -> None:
        self._lib = lib
        self.chain = None
        self._rng: Any = None
        if grammar is None and temperature > 0 and top_p >= 1.0:
            # Plain temperature sampling, the common request, drawn here with numpy: the same
            # distribution, but llama.cpp's `dist` sampler spends ~0.85 ms per token on a 49k
            # vocabulary (against ~0.2 ms here), and that part does not batch across sequences.
            import numpy as np

            self._np = np
            self._n_vocab = int(lib.llama_vocab_n_tokens(vocab))
            self._temperature = temperature
            self._rng = np.random.default_rng(seed if seed is not None else random.getrandbits(32))
            return
        self.chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if grammar:
            g = lib.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not g:
                lib.llama_sampler_free(self.chain)
                raise GrammarError("the grammar derived from the JSON schema does not parse")
            lib.llama_sampler_chain_add(self.chain, g)
        if temperature <= 0:
            lib.llama_sampler_chain_add(self.chain, lib.llama_sampler_init_greedy())
            return
        if top_p < 1.0:
            lib.llama_sampler_chain_add(self.chain, lib.llama_sampler_init_top_p(top_p, 1))
        lib.llama_sampler_chain_add(self.chain, lib.llama_sampler_init_temp(temperature))
        draw_seed = seed if seed is not None else random.getrandbits(32)
        lib.llama_sampler_chain_add(self.chain, lib.llama_sampler_init_dist(draw_seed & 0xFFFFFFFF))

    def sample(self, ctx: Any, index: int) -> int:
        """Draw from logits row `index` of the last decode (and accept the token)."""
        if self._rng is None:
            return int(self._lib.llama_sampler_sample(self.chain, ctx, index))
        np = self._np
        row = self._lib.llama_get_logits_ith(ctx, index)
        weights = np.ctypeslib.as_array(row, shape=(self._n_vocab,)) / self._temperature
        weights -= weights.max()
        np.exp(weights, out=weights)
        cumulative = np.cumsum(weights, dtype=np.float64)
        drawn = np.searchsorted(cumulative, self._rng.random() * cumulative[-1], side="right")
        return int(min(drawn, self._n_vocab - 1))

    def free(self) -> None:
        if self.chain:
            self._lib.llama_sampler_free(self.chain)
            self.chain = None


@dataclass
class _Sequence:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[GenerationChunk | BaseException]
    sampler: Sampler | None = None
    slot: int = -1
    n_past: int = 0  # tokens of this sequence already in the KV cache
    fed: list[int] = field(default_factory=list)  # exactly the tokens in the KV cache
    last_token: int = -1
    generated: int = 0
    held: str = ""  # text held back because it may be the start of a stop string
    decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    cancelled: bool = False
    done: bool = False
    logits_index: int = -1

    def emit(self, item: GenerationChunk | BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the reader's event loop is closed: nobody is listening
            self.cancelled = True


class BatchScheduler:
    """Owns the llama context and its decode thread; `submit()` streams one request."""

    def __init__(
        self,
        lib: Any,
        model: Any,
        ctx: Any,
        *,
        n_slots: int,
        n_ctx: int,
        n_batch: int,
        background_slots: int,
        prefill_chunk: int = 512,
    ) -> None:
        self._lib = lib
        self._model = model
        self._ctx = ctx
        self._vocab = model.vocab
        self.n_slots = n_slots
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.prefill_chunk = max(1, prefill_chunk)
        # Background work never takes every slot, so a user's chat always starts at once.
        self.background_slots = max(1, min(background_slots, n_slots - 1 if n_slots > 1 else 1))
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        self._cond = threading.Condition()
        self._waiting: list[tuple[int, int, _Sequence]] = []
        self._order = itertools.count()
        self._running: list[_Sequence] = []
        self._free_slots = list(range(n_slots))
        # Tokens whose KV a free slot still holds: a request sharing a prefix with them (the
        # same system prompt, a conversation's history) skips evaluating that prefix again.
        self._slot_cache: dict[int, list[int]] = {slot: [] for slot in range(n_slots)}
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="llm-decode", daemon=True)
        self._thread.start()

    # -- called from the event loop ------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        s = request.sampling
        seq = _Sequence(request, asyncio.get_running_loop(), asyncio.Queue())
        seq.sampler = Sampler(
            self._lib,
            self._vocab,
            temperature=s.temperature,
            top_p=s.top_p,
            seed=s.seed,
            grammar=s.grammar,
        )
        with self._cond:
            if self._closing:
                seq.sampler.free()
                raise RuntimeError("the model is being unloaded")
            heapq.heappush(self._waiting, (int(request.priority), next(self._order), seq))
            self._cond.notify()
        try:
            while True:
                item = await seq.queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if not seq.done:  # the consumer left early (client disconnected): free the slot
                with self._cond:
                    seq.cancelled = True
                    self._cond.notify()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"active": len(self._running), "queued": len(self._waiting)}

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=30)
        self._lib.llama_batch_free(self._batch)

    # -- the decode thread ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._running and not self._waiting:
                    self._cond.wait()
                if self._closing:
                    for seq in [*self._running, *(entry[2] for entry in self._waiting)]:
                        self._finish(seq, RuntimeError("the model was unloaded"))
                    self._running.clear()
                    self._waiting.clear()
                    return
                self._drop_cancelled()
                self._admit()
            if self._running:
                try:
                    self._step()
                except Exception as exc:  # a failed decode ends the requests in it, not the loop
                    with self._cond:
                        for seq in list(self._running):
                            seq.fed = []
                            self._lib.llama_memory_seq_rm(self._ctx.memory, seq.slot, -1, -1)
                            self._finish(seq, exc)

    def _drop_cancelled(self) -> None:
        self._waiting = [e for e in self._waiting if not e[2].cancelled or self._discard(e[2])]
        heapq.heapify(self._waiting)
        for seq in [s for s in self._running if s.cancelled]:
            self._finish(seq, None)

    def _discard(self, seq: _Sequence) -> bool:
        if seq.sampler is not None:
            seq.sampler.free()
        return False

    def _admit(self) -> None:
        skipped: list[tuple[int, int, _Sequence]] = []
        while self._waiting and self._free_slots:
            entry = heapq.heappop(self._waiting)
            seq = entry[2]
            background = sum(
                r.request.priority >= RequestPriority.BACKGROUND for r in self._running
            )
            if (
                seq.request.priority >= RequestPriority.BACKGROUND
                and background >= self.background_slots
            ):
                skipped.append(entry)
                continue
            self._assign_slot(seq)
            self._running.append(seq)
        for entry in skipped:
            heapq.heappush(self._waiting, entry)

    def _assign_slot(self, seq: _Sequence) -> None:
        """Take the free slot whose cached tokens share the longest prefix with the prompt."""
        prompt = seq.request.prompt_tokens

        def shared(slot: int) -> int:
            cached = self._slot_cache[slot]
            n = 0
            for a, b in zip(cached, prompt, strict=False):
                if a != b:
                    break
                n += 1
            return n

        slot = max(self._free_slots, key=shared)
        self._free_slots.remove(slot)
        keep = min(shared(slot), len(prompt) - 1)  # the last prompt token must be decoded
        mem = self._ctx.memory
        reusable = keep > 0 and self._lib.llama_memory_seq_pos_min(mem, slot) == 0
        if not (reusable and self._lib.llama_memory_seq_rm(mem, slot, keep, -1)):
            self._lib.llama_memory_seq_rm(mem, slot, -1, -1)
            keep = 0
        seq.slot = slot
        seq.n_past = keep
        seq.fed = list(prompt[:keep])

    def _finish(self, seq: _Sequence, error: BaseException | None) -> None:
        """Remove a sequence (lock held): free its slot (its KV stays for reuse) and sampler."""
        if seq in self._running:
            self._running.remove(seq)
        if seq.slot >= 0:
            self._slot_cache[seq.slot] = seq.fed
            self._free_slots.append(seq.slot)
            seq.slot = -1
        if seq.sampler is not None:
            seq.sampler.free()
            seq.sampler = None
        seq.done = True
        if error is not None and not seq.cancelled:
            seq.emit(error)

    def _step(self) -> None:
        batch = self._batch
        n = 0
        running = list(self._running)
        # Decoding sequences first (one token each), then prompt chunks fill the remaining room.
        running.sort(key=lambda s: s.n_past < len(s.request.prompt_tokens))
        decoding = sum(s.n_past >= len(s.request.prompt_tokens) for s in running)
        # While others stream, a new prompt goes in smaller chunks so their next token is not
        # held up by a whole long prompt in one step.
        budget = self.n_batch if decoding == 0 else min(self.n_batch, decoding + self.prefill_chunk)
        planned: list[tuple[_Sequence, list[int]]] = []
        for seq in running:
            seq.logits_index = -1
            prompt = seq.request.prompt_tokens
            if seq.n_past < len(prompt):
                tokens = prompt[seq.n_past : seq.n_past + max(budget - n, 0)]
            else:
                tokens = [seq.last_token]
            if tokens:
                planned.append((seq, tokens))
                n += len(tokens)
        # Into the batch in slot (sequence id) order: llama.cpp splits a batch whose sequence
        # ids are out of order into several sub-batches, and 4 tokens then cost 4 single-token
        # decodes (measured 14.6 ms against 8 ms in order, SmolLM2 Q4_0, 1 thread).
        planned.sort(key=lambda entry: entry[0].slot)
        n = 0
        for seq, tokens in planned:
            prompt = seq.request.prompt_tokens
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = seq.n_past + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq.slot
                batch.logits[n] = False
                n += 1
            seq.n_past += len(tokens)
            seq.fed.extend(tokens)
            if seq.n_past >= len(prompt):
                batch.logits[n - 1] = True
                seq.logits_index = n - 1
        batch.n_tokens = n
        if n == 0:
            return
        rc = self._lib.llama_decode(self._ctx.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc}")
        with self._cond:
            for seq in running:
                if seq.logits_index >= 0 and not seq.cancelled and seq.sampler is not None:
                    self._accept(seq, seq.sampler.sample(self._ctx.ctx, seq.logits_index))

    def _accept(self, seq: _Sequence, token: int) -> None:
        seq.last_token = token
        req = seq.request
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            self._end(seq, seq.held + seq.decoder.decode(b"", final=True), "stop")
            return
        seq.generated += 1
        text = seq.held + seq.decoder.decode(self._piece(token))
        cut = min((i for i in (text.find(s) for s in req.stop if s) if i >= 0), default=-1)
        if cut >= 0:
            self._end(seq, text[:cut], "stop")
            return
        if seq.generated >= req.max_tokens or seq.n_past + 1 >= self.n_ctx:
            self._end(seq, text + seq.decoder.decode(b"", final=True), "length")
            return
        keep = _partial_stop(text, req.stop)
        seq.held = text[len(text) - keep :] if keep else ""
        out = text[: len(text) - keep]
        if out:
            seq.emit(GenerationChunk(out, seq.generated))

    def _end(self, seq: _Sequence, text: str, reason: str) -> None:
        seq.emit(GenerationChunk(text, seq.generated, reason))
        self._finish(seq, None)

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, 256, 0, False)
        return buf.raw[: max(n, 0)]


def _partial_stop(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that is the start of some stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best
