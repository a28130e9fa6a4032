"""The lease state machine on its own: budget, order, pre-emption, revocation, fencing."""

from __future__ import annotations

import pytest

from nemo_server.common.errors import Conflict, Unprocessable
from nemo_server.common.gpu_state import (
    LeaseLost,
    LeaseState,
    OverBudget,
    StateConfig,
    UnknownLease,
)


def fresh(budget: int = 1000, **kw: float) -> LeaseState:
    return LeaseState.fresh(StateConfig(budget_mb=budget, **kw), now=0.0)


def test_leases_share_the_budget_like_a_counting_semaphore() -> None:
    s = fresh()
    a = s.acquire(0, "a", "background", 400, 30)
    b = s.acquire(0, "b", "background", 500, 30)
    c = s.acquire(0, "c", "background", 200, 30)
    assert [a["state"], b["state"], c["state"]] == ["granted", "granted", "waiting"]
    s.release(1, a["id"], a["token"])
    assert s.get(1, c["id"])["state"] == "granted"


def test_queue_is_ordered_by_priority_then_arrival() -> None:
    s = fresh()
    holder = s.acquire(0, "h", "foreground", 1000, 30)
    bg = s.acquire(1, "bg", "background", 600, 30)
    it1 = s.acquire(2, "it1", "interactive", 600, 30)
    fg = s.acquire(3, "fg", "foreground", 600, 30)
    it2 = s.acquire(4, "it2", "interactive", 600, 30)
    assert [e.id for e in s.queue(5)] == [fg["id"], it1["id"], it2["id"], bg["id"]]
    s.release(5, holder["id"], holder["token"])
    assert s.get(5, fg["id"])["state"] == "granted"
    assert s.get(5, it1["id"])["state"] == "waiting"


def test_preemption_asks_lower_priority_holders_only_as_many_as_needed() -> None:
    s = fresh(grace_s=5)
    old = s.acquire(0, "old", "background", 300, 30)
    new = s.acquire(1, "new", "background", 300, 30)
    it = s.acquire(2, "it", "interactive", 300, 30)
    fg = s.acquire(3, "fg", "foreground", 300, 30)
    assert fg["state"] == "waiting"
    # the most recent background holder yields first; interactive and the older one are kept
    assert s.get(3, new["id"])["preempt_requested"] is True
    assert s.get(3, old["id"])["preempt_requested"] is False
    assert s.get(3, it["id"])["preempt_requested"] is False
    s.release(4, new["id"], new["token"])
    assert s.get(4, fg["id"])["state"] == "granted"
    assert s.totals == {"grants": 4, "preemptions": 1}


def test_no_preemption_when_yielding_would_not_make_room() -> None:
    s = fresh()
    s.acquire(0, "fg1", "foreground", 700, 30)
    bg = s.acquire(0, "bg", "background", 300, 30)
    s.acquire(1, "fg2", "foreground", 800, 30)
    assert s.get(1, bg["id"])["preempt_requested"] is False


def test_equal_priority_is_never_preempted() -> None:
    s = fresh()
    a = s.acquire(0, "a", "interactive", 1000, 30)
    s.acquire(1, "b", "interactive", 500, 30)
    assert s.get(1, a["id"])["preempt_requested"] is False


def test_holder_that_does_not_yield_within_grace_is_revoked() -> None:
    s = fresh(grace_s=5)
    bg = s.acquire(0, "bg", "background", 800, 10)
    fg = s.acquire(1, "fg", "foreground", 500, 60)
    s.heartbeat(5.5, bg["id"], bg["token"])  # heartbeats do not save it from the grace period
    s.get(5.5, fg["id"])
    with pytest.raises(LeaseLost, match="did not yield"):
        s.heartbeat(6.5, bg["id"], bg["token"])
    assert s.holders["bg"]["revoked"] == 1
    # its token is refused, but it may still be finishing a unit: VRAM is freed at its TTL
    assert s.get(6.5, fg["id"])["state"] == "waiting"
    s.tick(15.6)
    assert s.get(15.6, fg["id"])["state"] == "granted"


def test_revoked_holder_that_says_it_stopped_frees_its_vram_at_once() -> None:
    s = fresh(grace_s=1)
    bg = s.acquire(0, "bg", "background", 800, 30)
    fg = s.acquire(0, "fg", "foreground", 500, 30)
    s.tick(1.5)
    with pytest.raises(LeaseLost):
        s.release(2, bg["id"], bg["token"])
    assert s.get(2, fg["id"])["state"] == "granted"


def test_holder_that_stops_heartbeating_loses_the_lease() -> None:
    s = fresh()
    a = s.acquire(0, "a", "foreground", 1000, 10)
    s.heartbeat(8, a["id"], a["token"])
    b = s.acquire(9, "b", "foreground", 1000, 30)
    assert b["state"] == "waiting"
    s.tick(18.5)
    assert s.get(18.5, b["id"])["state"] == "granted"
    with pytest.raises(LeaseLost):
        s.validate(18.5, a["id"], a["token"])


def test_tokens_only_grow_and_stale_tokens_are_refused() -> None:
    s = fresh()
    tokens = []
    for i in range(5):
        lease = s.acquire(i, "a", "foreground", 100, 30)
        tokens.append(lease["token"])
        s.release(i, lease["id"], lease["token"])
    assert tokens == sorted(tokens) and len(set(tokens)) == 5
    live = s.acquire(10, "a", "foreground", 100, 30)
    for op in (s.heartbeat, s.validate, s.release):
        with pytest.raises(LeaseLost, match="stale"):
            op(10, live["id"], live["token"] - 1)
    # a fresh state (a restart) starts above every earlier token
    later = LeaseState.fresh(StateConfig(budget_mb=1000), now=1.0)
    assert later.acquire(1, "a", "foreground", 100, 30)["token"] > 0


def test_release_twice_is_harmless_but_stale_release_is_refused() -> None:
    s = fresh()
    a = s.acquire(0, "a", "foreground", 100, 30)
    assert s.release(1, a["id"], a["token"])["state"] == "released"
    assert s.release(2, a["id"], a["token"])["state"] == "released"
    with pytest.raises(LeaseLost):
        s.heartbeat(2, a["id"], a["token"])


def test_ageing_lifts_background_above_newer_foreground() -> None:
    s = fresh(ageing_s=10)
    holder = s.acquire(0, "h", "foreground", 1000, 300)
    bg = s.acquire(0, "bg", "background", 600, 300)
    fg = s.acquire(25, "fg", "foreground", 600, 300)  # bg has waited 2 ageing periods
    assert [e.id for e in s.queue(25)] == [bg["id"], fg["id"]]
    s.release(26, holder["id"], holder["token"])
    assert s.get(26, bg["id"])["state"] == "granted"


def test_released_foreground_vram_lingers_only_against_lower_priorities() -> None:
    s = fresh(linger_s=1.0)
    fg = s.acquire(0, "fg", "foreground", 500, 30)
    bg = s.acquire(0, "bg", "background", 800, 30)
    s.release(1, fg["id"], fg["token"])
    assert s.get(1.5, bg["id"])["state"] == "waiting"  # held back for a returning foreground
    again = s.acquire(1.6, "fg", "foreground", 500, 30)
    assert again["state"] == "granted"
    s.release(2, again["id"], again["token"])
    s.tick(3.1)
    assert s.get(3.1, bg["id"])["state"] == "granted"  # the window passed


def test_abandoned_waiting_request_is_dropped() -> None:
    s = fresh()
    s.acquire(0, "h", "foreground", 1000, 300)
    w = s.acquire(0, "w", "foreground", 10, 5)
    s.tick(6)
    assert s.get(6, w["id"])["state"] == "abandoned"


def test_bad_input_is_refused_with_the_field() -> None:
    s = fresh()
    with pytest.raises(Unprocessable) as err:
        s.acquire(0, "a", "urgent", 100, 30)
    assert err.value.param == "priority"
    with pytest.raises(OverBudget, match="exceeds the whole GPU budget of 1000 MB"):
        s.acquire(0, "a", "foreground", 1001, 30)
    with pytest.raises(UnknownLease):
        s.heartbeat(0, "nope", 1)
    w = s.acquire(0, "a", "foreground", 1000, 30)
    x = s.acquire(0, "b", "foreground", 1000, 30)
    with pytest.raises(Conflict, match="not granted yet"):
        s.heartbeat(0, x["id"], 0)
    assert w["state"] == "granted"


def test_state_round_trips_and_grants_wait_after_loss() -> None:
    s = fresh()
    a = s.acquire(0, "a", "foreground", 500, 30)
    copy = LeaseState.from_dict(s.config, s.to_dict())
    assert copy.validate(1, a["id"], a["token"])["state"] == "granted"
    lost = LeaseState.fresh(s.config, now=2.0, blocked_until=32.0)
    b = lost.acquire(3, "b", "foreground", 1000, 30)
    assert b["state"] == "waiting"
    lost.tick(32.5)
    assert lost.get(32.5, b["id"])["state"] == "granted"
