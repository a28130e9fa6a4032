"""Parse PDF and DOCX in a child process with a wall-clock, CPU and memory limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys

from nemo_server.rag.parsing.blocks import Block, ParseError


async def parse_in_sandbox(
    kind: str, data: bytes, *, timeout_s: float, memory_mb: int, max_chars: int
) -> list[Block]:
    """Blocks of a `pdf` or `docx` document; ParseError when it is hostile, corrupt or encrypted."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nemo_server.rag.parsing.worker",
        kind,
        str(max_chars),
        str(memory_mb),
        str(max(1, math.ceil(timeout_s))),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), timeout=timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise ParseError(
            f"parsing the {kind.upper()} took longer than {timeout_s:g} s (a bomb-like file?)"
        ) from None
    if proc.returncode != 0 or not out:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        if "MemoryError" in err.decode("utf-8", "replace") or proc.returncode in (-9, -24):
            raise ParseError(f"parsing the {kind.upper()} exceeded its memory or time limit")
        raise ParseError(f"the {kind.upper()} could not be parsed: {tail[0][:300]}")
    result = json.loads(out)
    if not result.get("ok"):
        raise ParseError(result.get("error") or f"the {kind.upper()} could not be parsed")
    return [Block.from_dict(b) for b in result["blocks"]]
