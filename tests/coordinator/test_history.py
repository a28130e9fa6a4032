"""Randomized history check: >= 1,000 simulated runs with faults against the state machine.

Each run simulates holders following the client protocol (request, first heartbeat, heartbeats
every TTL/3, self-fencing: work only while the lease surely outlives the step, yield when asked)
under faults: holders crashed (SIGKILL), paused past their TTL (SIGSTOP), heartbeats dropped
(network), slow to yield, and the whole state lost (coordinator or Redis restarted) with the
restart quarantine. Time is simulated, so a run costs milliseconds. Checked in every step:
- the coordinator never grants more than the budget;
- holders that are actually working never use more than the budget together, across losses;
- fencing tokens only grow, and a refused token is never accepted again;
and after the faults stop, every waiting request is granted (no deadlock, no starvation).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from nemo_server.common.errors import Conflict, NemoError
from nemo_server.common.gpu_state import LeaseState, StateConfig

RUNS = int(os.environ.get("NEMO_HISTORY_RUNS", "1000"))
DT = 0.25
MARGIN = 2.0  # the restart quarantine's margin over max_ttl (as the backends use)


@dataclass
class Holder:
    name: str
    priority: str
    vram: int
    ttl: float
    slow: bool  # yields only after a random delay, possibly past the grace period
    mode: str = "idle"  # idle, waiting, holding, crashed
    lease: str = ""
    token: int = 0
    valid_until: float = 0.0
    last_beat: float = -1e9
    paused_until: float = 0.0
    yield_at: float | None = None
    work_left: int = 0


class Run:
    def __init__(self, seed: int) -> None:
        self.rng = rng = random.Random(seed)
        self.budget = rng.choice([1000, 2000, 3000])
        self.config = StateConfig(
            budget_mb=self.budget,
            grace_s=rng.choice([0.5, 1.0, 2.0]),
            ageing_s=rng.choice([0.0, 3.0, 10.0]),
            max_ttl_s=4.0,
        )
        self.now = 0.0
        self.state = LeaseState.fresh(self.config, self.now)
        self.holders = [
            Holder(
                f"h{i}",
                rng.choice(["foreground", "interactive", "background"]),
                rng.randint(1, self.budget // 100) * 100,
                rng.choice([1.0, 2.0, 4.0]),
                slow=rng.random() < 0.3,
            )
            for i in range(rng.randint(2, 6))
        ]
        self.max_token = 0
        self.refused: set[tuple[str, int]] = set()
        self.faults = True

    def op(self, fn, *args):  # type: ignore[no-untyped-def]
        result = fn(self.now, *args)
        for kind, view in self.state.events:
            if kind == "granted":
                assert view["token"] > self.max_token, "fencing token did not grow"
                self.max_token = view["token"]
        self.state.events.clear()
        assert self.state.used_mb() <= self.budget, "coordinator granted over the budget"
        return result

    def beat(self, h: Holder) -> bool:
        """Heartbeat sent up to 0.1 s before it is applied; False if the lease is lost."""
        sent = self.now - self.rng.uniform(0, 0.1)
        try:
            view = self.op(self.state.heartbeat, h.lease, h.token)
        except NemoError:
            self.refused.add((h.lease, h.token))
            return False
        assert (h.lease, h.token) not in self.refused, "a refused token was accepted again"
        h.valid_until, h.last_beat = sent + h.ttl, self.now
        if view["preempt_requested"] and h.yield_at is None:
            h.yield_at = self.now + (self.rng.uniform(0, 3) if h.slow else 0.0)
        return True

    def drop(self, h: Holder) -> None:
        h.mode, h.lease, h.token, h.yield_at = "idle", "", 0, None

    def step_holder(self, h: Holder) -> int:
        """Advance one holder; return the VRAM it works with during this step."""
        rng = self.rng
        if h.mode == "crashed" or self.now < h.paused_until:
            return 0
        if h.mode == "idle":
            if self.faults and rng.random() < 0.3:
                view = self.op(self.state.acquire, h.name, h.priority, h.vram, h.ttl)
                h.mode, h.lease, h.work_left = "waiting", view["id"], rng.randint(1, 12)
            return 0
        if h.mode == "waiting":
            try:
                view = self.op(self.state.get, h.lease)
            except NemoError:  # state lost: ask again
                self.drop(h)
                return 0
            if view["state"] == "granted":
                h.token = view["token"]
                if not self.beat(h):
                    self.drop(h)
                    return 0
                h.mode = "holding"
            elif view["state"] != "waiting":
                self.drop(h)
            elif self.faults and rng.random() < 0.02:
                self.op(self.state.cancel, h.lease)
                self.drop(h)
            return 0
        # holding
        if self.now - h.last_beat >= h.ttl / 3 and not (self.faults and rng.random() < 0.15):
            if not self.beat(h):
                self.drop(h)
                return 0
        if self.now + DT >= h.valid_until:  # self-fencing: the lease may not outlive the step
            self.drop(h)  # gives up without a release, like a holder cut off
            return 0
        if (h.yield_at is not None and self.now >= h.yield_at) or h.work_left <= 0:
            try:
                self.op(self.state.release, h.lease, h.token)
            except (Conflict, NemoError):
                self.refused.add((h.lease, h.token))
            self.drop(h)
            return 0
        h.work_left -= 1
        return h.vram

    def inject_fault(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.01:
            rng.choice(self.holders).mode = "crashed"
        elif roll < 0.03:
            rng.choice(self.holders).paused_until = self.now + rng.uniform(0, 3 * 4.0)
        elif roll < 0.04:  # coordinator restarted (memory) or Redis flushed: state lost
            blocked = self.now + self.config.max_ttl_s + MARGIN
            self.state = LeaseState.fresh(self.config, self.now, blocked_until=blocked)
            # tokens from the clock must still grow: the simulated clock is far behind the
            # wall clock, so emulate that a restart happens at a later wall time
            self.state.next_token = max(self.state.next_token, self.max_token + 1000)

    def run(self, steps: int, drain_steps: int) -> None:
        for i in range(steps + drain_steps):
            if i == steps:  # faults stop: holders resume, nobody new asks
                self.faults = False
                for h in self.holders:
                    h.paused_until = 0.0
            if self.faults:
                self.inject_fault()
            self.op(self.state.tick)
            order = self.holders[:]
            self.rng.shuffle(order)
            working = sum(self.step_holder(h) for h in order)
            assert working <= self.budget, "working holders exceeded the budget together"
            self.now += DT
        waiting = [h.name for h in self.holders if h.mode == "waiting"]
        assert not waiting, f"requests never granted after the faults stopped: {waiting}"


def test_randomized_histories_with_faults_keep_every_invariant() -> None:
    seed_base = int(os.environ.get("NEMO_HISTORY_SEED", "0"))
    for seed in range(seed_base, seed_base + RUNS):
        try:
            Run(seed).run(steps=80, drain_steps=60)
        except AssertionError as exc:
            raise AssertionError(f"history seed {seed}: {exc}") from exc
