"""The GPU lease state machine: pure, in memory, with time passed in explicitly.

One implementation of the protocol, used three ways: by `LocalLeaseClient` (in-process), by the
coordinator's memory backend, and by its Redis backend (which loads this state from Redis, applies
one operation and commits it back with an atomic compare-and-set script).

Rules (see ARCHITECTURE.md, "The GPU lease protocol"):
- VRAM is a counting semaphore: leases are granted while the sum of granted `vram_mb` fits.
- Waiting requests are ordered by priority, then arrival; ageing lifts a waiting request one
  priority class per `ageing_s` seconds waited, so background work is not starved forever.
- When the head of the queue does not fit, strictly lower-priority holders are asked to yield
  (`preempt_requested`), lowest priority and most recent first, only as many as needed and only
  if yielding would make the request fit. A holder that does not release within `grace_s` is
  revoked: its token is refused from then on, but its VRAM stays counted until its TTL runs out
  (or it releases), since until then it may still be finishing a unit in good faith. A holder
  that does not heartbeat within its TTL is revoked.
- Linger: for `linger_s` after a foreground or interactive holder releases, its VRAM is held
  back from lower-priority requests (not from its own class), so back-to-back foreground
  requests do not wait for a background holder to be re-granted and pre-empted again each time.
  Ageing still lifts a long-waiting request above it.
- Every grant gets a fencing token larger than every earlier one (tokens start from the wall
  clock in microseconds, so they keep growing across restarts of the state).
- After state was lost (a restart), no grant is made until every lease granted before the loss
  must have expired (`grants_blocked_until`), since their holders may still be working.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from nemo_server.common.errors import Conflict, NotFound, Unprocessable


class Priority(StrEnum):
    """Priority class of a lease; foreground > interactive > background."""

    FOREGROUND = "foreground"
    INTERACTIVE = "interactive"
    BACKGROUND = "background"

    @property
    def rank(self) -> int:
        """0 is the highest priority."""
        return _RANK[self]


_RANK = {Priority.FOREGROUND: 0, Priority.INTERACTIVE: 1, Priority.BACKGROUND: 2}


class LeaseLost(Conflict):
    """The lease was revoked or released, or the fencing token is stale (409)."""

    code = "lease_lost"


class UnknownLease(NotFound):
    """No lease or request with this id was ever known here (404)."""

    code = "unknown_lease"


class OverBudget(Conflict):
    """The request asks for more VRAM than the whole budget (409)."""

    code = "over_budget"


@dataclass
class StateConfig:
    """Knobs of the state machine."""

    budget_mb: int
    grace_s: float = 10.0
    ageing_s: float = 60.0
    max_ttl_s: float = 300.0
    tombstone_s: float = 3600.0
    max_tombstones: int = 4096
    max_holders: int = 1024
    linger_s: float = 0.5


@dataclass
class Entry:
    """A waiting request or a granted lease (the request id becomes the lease id)."""

    id: str
    holder: str
    priority: str
    vram_mb: int
    ttl_s: float
    seq: int
    requested_at: float
    expires_at: float  # waiting: dropped unless polled by then; granted: revoked unless heartbeat
    state: str = "waiting"
    token: int = 0
    granted_at: float | None = None
    preempt_requested: bool = False
    preempt_deadline: float | None = None


def _view(entry: Entry) -> dict[str, Any]:
    return asdict(entry)


def with_now(view: dict[str, Any], now: float) -> dict[str, Any]:
    """A view stamped with the state's clock, so a client can compute the TTL left."""
    return {**view, "now": now}


@dataclass
class LeaseState:
    """The whole coordinator state; JSON-serialisable with `to_dict`/`from_dict`."""

    config: StateConfig
    next_token: int = 0
    seq: int = 0
    grants_blocked_until: float = 0.0
    entries: dict[str, Entry] = field(default_factory=dict)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    holders: dict[str, dict[str, float]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    lingering: dict[str, dict[str, float]] = field(default_factory=dict)
    # Events of the last operations, drained by the caller (metrics); not persisted.
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    # ----- construction and persistence -------------------------------------------------

    @classmethod
    def fresh(cls, config: StateConfig, now: float, blocked_until: float = 0.0) -> LeaseState:
        """A new empty state; tokens start above any token a previous state gave."""
        return cls(
            config=config, next_token=int(now * 1_000_000), grants_blocked_until=blocked_until
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_token": self.next_token,
            "seq": self.seq,
            "grants_blocked_until": self.grants_blocked_until,
            "entries": {k: asdict(v) for k, v in self.entries.items()},
            "ended": self.ended,
            "holders": self.holders,
            "totals": self.totals,
            "lingering": self.lingering,
        }

    @classmethod
    def from_dict(cls, config: StateConfig, data: dict[str, Any]) -> LeaseState:
        return cls(
            config=config,
            next_token=int(data["next_token"]),
            seq=int(data["seq"]),
            grants_blocked_until=float(data.get("grants_blocked_until", 0.0)),
            entries={k: Entry(**v) for k, v in data.get("entries", {}).items()},
            ended=dict(data.get("ended", {})),
            holders=dict(data.get("holders", {})),
            totals=dict(data.get("totals", {})),
            lingering=dict(data.get("lingering", {})),
        )

    # ----- derived figures --------------------------------------------------------------

    def granted(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.state == "granted"]

    def held(self) -> list[Entry]:
        """Granted leases and revoked ones whose holder may still be working."""
        return [e for e in self.entries.values() if e.state in ("granted", "revoked")]

    def used_mb(self) -> int:
        return sum(e.vram_mb for e in self.held())

    def queue(self, now: float) -> list[Entry]:
        """Waiting requests in grant order: effective priority (with ageing), then arrival."""
        waiting = [e for e in self.entries.values() if e.state == "waiting"]
        return sorted(waiting, key=lambda e: (self._effective_rank(e, now), e.seq))

    def _effective_rank(self, entry: Entry, now: float) -> int:
        base = _RANK[Priority(entry.priority)]
        if self.config.ageing_s <= 0:
            return base
        lifted = math.floor(max(0.0, now - entry.requested_at) / self.config.ageing_s)
        return max(0, base - lifted)

    # ----- operations -------------------------------------------------------------------

    def acquire(
        self,
        now: float,
        holder: str,
        priority: str,
        vram_mb: int,
        ttl_s: float,
        lease_id: str | None = None,
    ) -> dict[str, Any]:
        """Queue a request and grant it at once if it fits; returns its view."""
        try:
            prio = Priority(priority)
        except ValueError:
            choices = ", ".join(p.value for p in Priority)
            raise Unprocessable(
                f"unknown priority {priority!r}; use one of {choices}", param="priority"
            ) from None
        if vram_mb < 1:
            raise Unprocessable("vram_mb must be at least 1", param="vram_mb")
        if vram_mb > self.config.budget_mb:
            raise OverBudget(
                f"vram_mb {vram_mb} exceeds the whole GPU budget of {self.config.budget_mb} MB",
                param="vram_mb",
            )
        ttl = min(max(float(ttl_s), 1.0), self.config.max_ttl_s)
        self.tick(now)
        self.seq += 1
        entry = Entry(
            id=lease_id or uuid.uuid4().hex,
            holder=holder,
            priority=prio.value,
            vram_mb=vram_mb,
            ttl_s=ttl,
            seq=self.seq,
            requested_at=now,
            expires_at=now + ttl,
        )
        self.entries[entry.id] = entry
        self._schedule(now)
        return _view(entry)

    def get(self, now: float, lease_id: str) -> dict[str, Any]:
        """The view of a lease or request; polling keeps a waiting request alive."""
        self.tick(now)
        entry = self.entries.get(lease_id)
        if entry is None:
            return self._ended_view(lease_id)
        # Refresh a waiting request's liveness only past half its TTL, so frequent polls
        # (long polling on Redis) mostly read without writing.
        if entry.state == "waiting" and entry.expires_at - now < entry.ttl_s / 2:
            entry.expires_at = now + entry.ttl_s
        return _view(entry)

    def heartbeat(self, now: float, lease_id: str, token: int) -> dict[str, Any]:
        """Extend a granted lease by its TTL; refused (409) under a stale token."""
        entry = self._live(now, lease_id, token)
        entry.expires_at = now + entry.ttl_s
        return _view(entry)

    def validate(self, now: float, lease_id: str, token: int) -> dict[str, Any]:
        """Check that `token` is the live token of this lease (409 if not)."""
        return _view(self._live(now, lease_id, token))

    def release(self, now: float, lease_id: str, token: int) -> dict[str, Any]:
        """Give a lease back; releasing twice with the same token is harmless."""
        self.tick(now)
        gone = self.ended.get(lease_id)
        if gone is not None and gone["reason"] == "released" and gone["token"] == token:
            return self._ended_view(lease_id)
        entry = self.entries.get(lease_id)
        if entry is not None and entry.state == "revoked" and entry.token == token:
            # the revoked holder says it stopped: its VRAM is free now (the answer stays 409)
            self._end(entry, now, "preempt_timeout")
            self._schedule(now)
        entry = self._live(now, lease_id, token)
        self._end(entry, now, "released")
        self._schedule(now)
        return self._ended_view(lease_id)

    def cancel(self, now: float, lease_id: str) -> dict[str, Any]:
        """Withdraw a request (waiting or granted), e.g. after the requester gave up waiting."""
        self.tick(now)
        entry = self.entries.get(lease_id)
        if entry is None:
            return self._ended_view(lease_id)
        self._end(entry, now, "cancelled")
        self._schedule(now)
        return self._ended_view(lease_id)

    def tick(self, now: float) -> None:
        """Apply time: revoke expired and unyielding leases, drop abandoned requests, grant."""
        for entry in list(self.entries.values()):
            if entry.state == "granted":
                if now > entry.expires_at:
                    self._end(entry, now, "expired")
                elif entry.preempt_deadline is not None and now > entry.preempt_deadline:
                    self._revoke(entry, now, "preempt_timeout")
            elif entry.state == "revoked":
                if now > entry.expires_at:
                    self._end(entry, now, "preempt_timeout")
            elif now > entry.expires_at:
                self._end(entry, now, "abandoned")
        horizon = now - self.config.tombstone_s
        stale = [k for k, v in self.ended.items() if v["at"] < horizon]
        overflow = len(self.ended) - len(stale) - self.config.max_tombstones
        if overflow > 0:
            doomed = set(stale)
            oldest = sorted(
                (k for k in self.ended if k not in doomed), key=lambda k: self.ended[k]["at"]
            )
            stale += oldest[:overflow]
        for key in stale:
            del self.ended[key]
        self._schedule(now)

    # ----- internals --------------------------------------------------------------------

    def _live(self, now: float, lease_id: str, token: int) -> Entry:
        self.tick(now)
        entry = self.entries.get(lease_id)
        if entry is None:
            gone = self.ended.get(lease_id)
            if gone is None:
                raise UnknownLease(f"no lease {lease_id!r}", param="lease_id")
            raise LeaseLost(
                f"lease {lease_id} has ended ({gone['reason']}); token {token} is stale",
                param="token",
                extra={"reason": gone["reason"]},
            )
        if entry.state == "revoked":
            raise LeaseLost(
                f"lease {lease_id} was revoked: it did not yield within the grace period",
                param="token",
                extra={"reason": "preempt_timeout"},
            )
        if entry.state != "granted":
            raise Conflict(f"lease {lease_id} is not granted yet", param="lease_id")
        if entry.token != token:
            raise LeaseLost(
                f"stale fencing token {token} for lease {lease_id}",
                param="token",
                extra={"reason": "stale_token"},
            )
        return entry

    def _ended_view(self, lease_id: str) -> dict[str, Any]:
        gone = self.ended.get(lease_id)
        if gone is None:
            raise UnknownLease(f"no lease {lease_id!r}", param="lease_id")
        return {
            "id": lease_id,
            "state": gone["reason"],
            "token": gone["token"],
            "holder": gone["holder"],
            "vram_mb": gone["vram_mb"],
            "priority": gone.get("priority"),
            "preempt_requested": False,
        }

    def _holder(self, name: str, now: float) -> dict[str, float]:
        stats = self.holders.get(name)
        if stats is None:
            if len(self.holders) >= self.config.max_holders:
                oldest = min(self.holders, key=lambda k: self.holders[k]["last_seen"])
                del self.holders[oldest]
            stats = {"grants": 0, "preempted": 0, "revoked": 0, "held_s": 0.0, "waited_s": 0.0}
            self.holders[name] = stats
        stats["last_seen"] = now
        return stats

    def _count(self, name: str) -> None:
        self.totals[name] = self.totals.get(name, 0) + 1

    def _end(self, entry: Entry, now: float, reason: str) -> None:
        del self.entries[entry.id]
        self.ended[entry.id] = {
            "reason": reason,
            "at": now,
            "token": entry.token,
            "holder": entry.holder,
            "vram_mb": entry.vram_mb,
            "priority": entry.priority,
        }
        if entry.state == "granted":
            stats = self._holder(entry.holder, now)
            stats["held_s"] += now - (entry.granted_at or now)
            if reason == "expired":
                self._revoked(entry, now, reason)
            else:
                self.events.append(("released", {**_view(entry), "reason": reason}))
                rank = _RANK[Priority(entry.priority)]
                if reason == "released" and rank < 2 and self.config.linger_s > 0:
                    self.lingering[entry.id] = {
                        "rank": rank,
                        "vram_mb": entry.vram_mb,
                        "until": now + self.config.linger_s,
                    }

    def _revoke(self, entry: Entry, now: float, reason: str) -> None:
        entry.state = "revoked"
        stats = self._holder(entry.holder, now)
        stats["held_s"] += now - (entry.granted_at or now)
        self._revoked(entry, now, reason)

    def _revoked(self, entry: Entry, now: float, reason: str) -> None:
        self._holder(entry.holder, now)["revoked"] += 1
        self._count("revoked")
        self.events.append(("revoked", {**_view(entry), "reason": reason}))

    def _schedule(self, now: float) -> None:
        if now < self.grants_blocked_until:
            return
        self.lingering = {k: v for k, v in self.lingering.items() if v["until"] > now}
        free = self.config.budget_mb - self.used_mb()
        for entry in self.queue(now):
            rank = self._effective_rank(entry, now)
            held_back = sum(v["vram_mb"] for v in self.lingering.values() if v["rank"] < rank)
            if entry.vram_mb <= free - held_back:
                free -= entry.vram_mb
                self._grant(entry, now)
                # its class is back: the VRAM held back for it is its own again
                self.lingering = {k: v for k, v in self.lingering.items() if v["rank"] < rank}
                continue
            if entry.vram_mb > free:
                self._preempt_for(entry, free, now)
            break  # head-of-line: nothing overtakes the first request that does not fit

    def _grant(self, entry: Entry, now: float) -> None:
        self.next_token += 1
        entry.state, entry.token, entry.granted_at = "granted", self.next_token, now
        entry.expires_at = now + entry.ttl_s
        stats = self._holder(entry.holder, now)
        stats["grants"] += 1
        stats["waited_s"] += now - entry.requested_at
        self._count("grants")
        self.events.append(("granted", {**_view(entry), "wait_s": now - entry.requested_at}))

    def _preempt_for(self, waiter: Entry, free: int, now: float) -> None:
        rank = _RANK[Priority(waiter.priority)]
        granted = self.granted()
        yielding = sum(e.vram_mb for e in self.held() if e.preempt_requested)
        if free + yielding >= waiter.vram_mb:
            return
        candidates = sorted(
            (e for e in granted if not e.preempt_requested and _RANK[Priority(e.priority)] > rank),
            key=lambda e: (-_RANK[Priority(e.priority)], -(e.granted_at or 0.0), -e.seq),
        )
        if free + yielding + sum(e.vram_mb for e in candidates) < waiter.vram_mb:
            return  # yielding would not make it fit: do not disturb anyone
        for victim in candidates:
            if free + yielding >= waiter.vram_mb:
                break
            victim.preempt_requested = True
            victim.preempt_deadline = now + self.config.grace_s
            yielding += victim.vram_mb
            self._holder(victim.holder, now)["preempted"] += 1
            self._count("preemptions")
            self.events.append(("preempt_requested", _view(victim)))

    def status(self, now: float) -> dict[str, Any]:
        """Leases, queue, budget and per-holder figures, for admins."""
        self.tick(now)
        return {
            "budget_mb": self.config.budget_mb,
            "used_mb": self.used_mb(),
            "free_mb": self.config.budget_mb - self.used_mb(),
            "grants_blocked_until": self.grants_blocked_until or None,
            "leases": [_view(e) for e in sorted(self.held(), key=lambda e: e.seq)],
            "queue": [_view(e) for e in self.queue(now)],
            "holders": {k: dict(v) for k, v in self.holders.items()},
            "totals": dict(self.totals),
        }
