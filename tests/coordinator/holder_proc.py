"""A GPU holder as its own process, for the fault tests (not a test module).

Writes one JSON line per event to --out: granted, work (a unit of work done while the lease was
locally live when it started), unit (such work then accepted: its token validated after it),
lost, refused, unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any

from nemo_server.common.errors import NemoError, ServiceUnavailable
from nemo_server.common.gpu import Lease, LeaseLost
from nemo_server.common.gpu_http import HttpLeaseClient
from nemo_server.common.settings import CommonSettings

stop = asyncio.Event()


def emit(out: str, **event: Any) -> None:
    with open(out, "a") as handle:
        handle.write(json.dumps({"t": time.time(), **event}) + "\n")


async def work(lease: Lease, args: argparse.Namespace, units: int | None) -> None:
    """Units of work; pending ones are accepted when the token validates (a checkpoint)."""
    done, pending = 0, []
    while units is None or done < units:
        if stop.is_set():
            return
        lease.check()
        t0 = time.time()
        await asyncio.sleep(args.unit_s)
        # GPU time actually used while believing the lease live, accepted or not
        pending.append({"t0": t0, "t1": time.time(), "token": lease.token, "vram": args.vram})
        emit(args.out, event="work", **pending[-1])
        done += 1
        if done % args.validate_every == 0 or done == units:
            await lease.validate()
            for unit in pending:
                emit(args.out, event="unit", **unit)
            pending.clear()


async def main(args: argparse.Namespace) -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    client = HttpLeaseClient.for_settings(CommonSettings())
    while not stop.is_set():
        try:
            lease = await client.acquire(
                args.name,
                priority=args.priority,
                vram_mb=args.vram,
                ttl_s=args.ttl,
                wait_timeout_s=None,
            )
        except ServiceUnavailable as exc:
            emit(args.out, event="unavailable", error=exc.message)
            await asyncio.sleep(0.2)
            continue
        emit(args.out, event="granted", id=lease.id, token=lease.token)
        try:
            await work(lease, args, None if args.mode == "hold" else args.units)
        except ServiceUnavailable as exc:  # could not validate: the unit is not accepted
            emit(args.out, event="unavailable", error=exc.message)
            await asyncio.sleep(0.1)
        except LeaseLost as exc:
            emit(args.out, event="lost", error=exc.message)
            try:
                await client.transport.validate(lease.id, lease.token)
                emit(args.out, event="accepted")
            except NemoError as err:
                emit(args.out, event="refused", status=err.status_code, code=err.code)
            if args.mode == "hold":
                return
        finally:
            await lease.release()
    await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", choices=["hold", "loop"], default="hold")
    parser.add_argument("--priority", default="foreground")
    parser.add_argument("--vram", type=int, default=1000)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--unit-s", type=float, default=0.05)
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--validate-every", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
