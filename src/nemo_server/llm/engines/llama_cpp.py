"""The llama.cpp engine: a GGUF model loaded through llama-cpp-python's low-level API.

One llama context holds `n_slots` sequences (one KV stream each); `BatchScheduler` decodes all
running requests together in one `llama_decode` call per step (continuous batching).
llama_cpp is imported lazily: importing this module costs nothing.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from nemo_server.llm.engines.base import (
    EngineOptions,
    GenerationChunk,
    GenerationRequest,
    GrammarError,
    ModelSpec,
)
from nemo_server.llm.engines.llama_batch import BatchScheduler, Sampler

log = logging.getLogger("nemo.llm.engine")

# Used when a GGUF carries no chat template (Gemma 3 270M is a base model): plain ChatML.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_backend_ready = False


def _init_backend() -> Any:
    global _backend_ready
    import llama_cpp

    if not _backend_ready:
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp logs every context build at length; errors only
        llama_cpp.llama_backend_init()
        _backend_ready = True
    return llama_cpp


def gpu_available() -> bool:
    """True when llama.cpp was built with a GPU backend that can take layers."""
    return bool(_init_backend().llama_supports_gpu_offload())


class LlamaCppModel:
    """A GGUF model plus one multi-sequence context (see `LoadedModel`)."""

    def __init__(self, spec: ModelSpec, options: EngineOptions) -> None:
        llama_cpp = _init_backend()
        from llama_cpp._internals import LlamaContext, LlamaModel

        self.name = spec.name
        self.spec = spec
        self._lib = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = -1 if options.gpu else 0
        if not options.gpu and not extra_buffers_safe():
            log.warning("%s: AMX CPU, weights kept in plain buffers (llama.cpp#20824)", spec.name)
            model_params.use_extra_bufts = False
        self._model = LlamaModel(path_model=str(spec.path), params=model_params, verbose=False)
        self.n_slots = max(1, options.n_slots)
        self.n_ctx = min(options.ctx_per_slot, self._model.n_ctx_train())
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = self.n_ctx * self.n_slots
        ctx_params.n_batch = options.n_batch
        ctx_params.n_ubatch = options.n_batch
        ctx_params.n_seq_max = self.n_slots
        # Separate KV streams per sequence: requests share no prefix, and this is faster then.
        ctx_params.kv_unified = False
        # Half the cores by default: llama.cpp's threads spin-wait at every step, and on a CPU
        # shared with the other services a thread that loses its core stalls all of them.
        threads = options.n_threads or max(1, (os.cpu_count() or 2) // 2)
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        self._ctx = LlamaContext(model=self._model, params=ctx_params, verbose=False)
        self.device = "gpu" if options.gpu else "cpu"
        self.metadata = self._model.metadata()
        self._bos_text = self._token_text(self._model.token_bos())
        total = estimate_vram_mb(spec.path.stat().st_size, self.metadata, ctx_params.n_ctx)
        self.vram_mb = total if options.gpu else 0
        self._template = self._chat_template()
        self._scheduler = BatchScheduler(
            llama_cpp,
            self._model,
            self._ctx,
            n_slots=self.n_slots,
            n_ctx=self.n_ctx,
            n_batch=options.n_batch,
            background_slots=options.background_slots,
            prefill_chunk=options.prefill_chunk,
        )
        log.info(
            "loaded %s from %s on %s (%d slots x %d tokens)",
            spec.name,
            spec.path,
            self.device,
            self.n_slots,
            self.n_ctx,
        )

    # -- text ------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        add_bos = add_special and self._model.add_bos_token()
        if add_bos and self._bos_text and text.startswith(self._bos_text):
            add_bos = False  # the chat template wrote the BOS token already
        return list(self._model.tokenize(text.encode("utf-8"), add_bos, True))

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self._model.vocab, token, buf, 256, 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def _chat_template(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self._model.token_eos()),
            bos_token=self._token_text(self._model.token_bos()),
            add_generation_prompt=True,
        )

    def render_chat(self, messages: list[dict[str, Any]]) -> str:
        try:
            return str(self._template(messages=messages).prompt)
        except Exception as exc:  # a template's raise_exception(), e.g. roles out of order
            raise ValueError(f"the model's chat template rejected the messages: {exc}") from exc

    def compile_json_schema(self, schema: dict[str, Any]) -> str:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        try:
            grammar = json_schema_to_gbnf(json.dumps(schema))
        except Exception as exc:
            raise GrammarError(f"the JSON schema cannot be enforced: {exc}") from exc
        # Parse it once now so a bad grammar is a 400, not a failure inside the decode loop.
        Sampler(
            self._lib, self._model.vocab, temperature=0, top_p=1, seed=0, grammar=grammar
        ).free()
        return grammar

    # -- generation ------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        return self._scheduler.submit(request)

    def stats(self) -> dict[str, int]:
        return self._scheduler.stats()

    def close(self) -> None:
        self._scheduler.close()
        self._ctx.close()
        self._model.close()


def extra_buffers_safe() -> bool:
    """Whether llama.cpp may move this model's weights into its CPU "extra" buffers.

    On a CPU with AMX, llama.cpp puts supported weights into AMX buffers, and on this project's
    Sapphire Rapids machines its AMX matrix multiply crashes the process (SIGSEGV at the first
    decode) for every model tried: Gemma 3 Q4_K_M, SmolLM2 Q4_1 and its Q4_0 copy; upstream
    reports the same (ggml-org/llama.cpp#20824). There the weights stay in plain CPU buffers,
    which also gives up the Q4_0 interleaved repack (slower batched decoding, but correct).
    """
    return b"AMX_INT8 = 1" not in _init_backend().llama_print_system_info()


def estimate_vram_for(spec: ModelSpec, options: EngineOptions) -> int:
    """VRAM the model will need with these options, read from the GGUF header (vocab only)."""
    llama_cpp = _init_backend()
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(spec.path), params=params, verbose=False)
    try:
        n_ctx = min(options.ctx_per_slot, model.n_ctx_train()) * max(1, options.n_slots)
        return estimate_vram_mb(spec.path.stat().st_size, model.metadata(), n_ctx)
    finally:
        model.close()


def estimate_vram_mb(file_bytes: int, meta: dict[str, str], n_ctx_total: int) -> int:
    """Weights + f16 KV cache for the whole context + a compute-buffer margin, in MiB."""
    arch = meta.get("general.architecture", "llama")
    layers = int(meta.get(f"{arch}.block_count", "32"))
    heads = int(meta.get(f"{arch}.attention.head_count", "32"))
    heads_kv = int(meta.get(f"{arch}.attention.head_count_kv", str(heads)))
    embd = int(meta.get(f"{arch}.embedding_length", "4096"))
    head_dim = int(meta.get(f"{arch}.attention.key_length", str(embd // max(heads, 1))))
    kv_bytes = 2 * layers * n_ctx_total * heads_kv * head_dim * 2
    return int((file_bytes + kv_bytes) / (1 << 20) * 1.1) + 256


def build(spec: ModelSpec, options: EngineOptions) -> LlamaCppModel:
    """Registry entry: load `spec` with llama.cpp (on the CPU, a bundled model's repacked copy)."""
    if not options.gpu:
        from nemo_server.llm.engines.repack import for_cpu

        spec = for_cpu(spec, options.cpu_repack, options.repack_dir, _init_backend())
    return LlamaCppModel(spec, options)
