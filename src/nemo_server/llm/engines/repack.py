"""CPU repacking: a Q4_0 copy of the bundled SmolLM2, written once into the data dir.

The bundled SmolLM2 file is Q4_1. On the development CPU llama.cpp's matmul for Q4_1 (and
Q4_K, Q8_0) costs as much per token in a batch as for one token alone,
so decoding 4 requests together is no faster than one after the other. Q4_0 (also 4-bit) has
CPU kernels that do batch (llama.cpp repacks Q4_0 weights into interleaved blocks at load):
measured in `benchmarks/llm_repack.py`, see docs/llm.md. Every matrix of the copy is
Q4_0, the token embedding / output matrix too (see KINDS). It is made with llama-cpp-python's
own `llama_model_quantize` (allow_requantize), beside the data dir's other
models, checked by size and sha256 against a small JSON record, and never in the package.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from nemo_server.llm.engines.base import ModelSpec

log = logging.getLogger("nemo.llm.repack")

# Per type: llama.cpp's `enum llama_ftype` for the file and `enum ggml_type` for the token
# embedding / output matrix. That matrix too: llama_model_quantize would leave it Q8_0 (or
# Q6_K), whose CPU matmul does not batch, and with a 49k vocabulary it is a fifth of the
# weights: decoding 4 sequences cost 14.2 ms of CPU against 4.3 ms for one with it Q8_0, and
# 6.9 ms against 3.5 ms with it Q4_0 (SmolLM2, 1 thread, this VM).
KINDS: dict[str, tuple[int, int]] = {"q4_0": (2, 2)}
_lock = threading.Lock()
_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process


def sha256_of(path: Path) -> str:
    """sha256 of a file, remembered per process while its size and mtime stay the same."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def repacked_path(source: Path, kind: str, directory: Path) -> Path:
    """Where the `kind` copy of `source` lives."""
    return directory / f"{source.stem}.{kind}.gguf"


def _record_of(target: Path) -> Path:
    return target.with_suffix(".json")


def _is_current(source: Path, target: Path, kind: str) -> bool:
    """The copy exists, is the one recorded (size, sha256), and was made from this source."""
    try:
        record: dict[str, Any] = json.loads(_record_of(target).read_text())
        return (
            record.get("type") == kind
            and record.get("recipe") == list(KINDS[kind])
            and target.stat().st_size == record["size"]
            and source.stat().st_size == record["source_size"]
            and sha256_of(source) == record["source_sha256"]
            and sha256_of(target) == record["sha256"]
        )
    except (OSError, ValueError, KeyError):
        return False


def ensure_repacked(source: Path, kind: str, directory: Path, llama_cpp: Any) -> Path:
    """The path of a `kind` copy of `source` in `directory`, made now unless already there."""
    target = repacked_path(source, kind, directory)
    with _lock:  # concurrent loads in one process make it once
        if _is_current(source, target, kind):
            return target
        directory.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        record_partial = target.with_name(f"{target.name}.json.partial-{os.getpid()}")
        try:
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype, tensor_type = KINDS[kind]
            params.token_embedding_type = tensor_type
            params.output_tensor_type = tensor_type
            params.allow_requantize = True  # the source is already quantized
            params.nthread = 1
            status = llama_cpp.llama_model_quantize(
                str(source).encode(), str(partial).encode(), params
            )
            if status != 0:
                raise RuntimeError(f"llama_model_quantize to {kind} failed ({status})")
            record = {
                "type": kind,
                "recipe": list(KINDS[kind]),
                "size": partial.stat().st_size,
                "sha256": sha256_of(partial),
                "source": str(source),
                "source_size": source.stat().st_size,
                "source_sha256": sha256_of(source),
            }
            # The model first, then its record: a half-written copy is never taken as current.
            os.replace(partial, target)
            record_partial.write_text(json.dumps(record, indent=1))
            os.replace(record_partial, _record_of(target))
        finally:
            partial.unlink(missing_ok=True)
            record_partial.unlink(missing_ok=True)
        log.info("wrote a %s copy of %s to %s", kind, source.name, target)
        return target


def for_cpu(spec: ModelSpec, kind: str, directory: Path | None, llama_cpp: Any) -> ModelSpec:
    """The spec to load on the CPU: the `kind` copy of a model marked for it, else unchanged."""
    if kind == "none" or directory is None or not spec.cpu_repack:
        return spec
    try:
        return replace(spec, path=ensure_repacked(spec.path, kind, directory, llama_cpp))
    except (OSError, RuntimeError) as exc:  # e.g. a read-only or full data dir
        log.warning("serving %s itself: its %s copy could not be made (%s)", spec.path, kind, exc)
        return spec
