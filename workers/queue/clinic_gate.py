"""The clinic gate: at most N of one clinic's messages in the shared queues at once.

Every clinic's work goes through the same three Dramatiq queues, which are FIFO lists in
Redis: a bulk import of 5,000 bookings for one clinic would put 5,000 messages ahead of
another clinic's one booking. The gate keeps each clinic's share of the shared queues
small, so whatever a clinic sends, another clinic's message has at most N messages of
each busy clinic ahead of it:

- A message carries its clinic in the ``clinic`` option (``workers.queue.work_queue``).
  When it is enqueued ready to run, the **admit** script counts the clinic's messages in
  flight (queued, fetched or running: a sorted set of their Redis message ids). Below the
  limit, it goes onto Dramatiq's queue exactly as Dramatiq's own enqueue would put it;
  at the limit, it waits in the clinic's own waiting list (one per queue).
- When a worker acknowledges the message, the **release** script (which is also the
  acknowledgement: Dramatiq's ``ack`` command, then the gate) gives the slot back and
  moves the clinic's next waiting message onto its queue. Success, a permanent failure
  and a retry all end the message's run: a retry waits in a delay queue, which holds no
  slot, and takes one again when it is due (``workers.queue.gated_broker``).
- The next waiting message is taken from the latest stage of the pipeline first
  (notifications, then meetings, then events: a clinic finishes the bookings it started
  before it starts new ones), and a message that has run before (a retry or a deferral,
  back from its delay) goes to the front of its list: it was admitted once already.

Each operation is one Lua script, so the count and the lists change together, and costs
one round trip: the admit script replaces Dramatiq's enqueue command, the release script
its ack command. The gate adds no Redis call per message.

Nothing here is the truth: the store is (principle 1). A slot is a lease, its deadline on
Redis's clock: a slot whose message never comes back (lost with its worker's memory, or a
half-lost Redis) is dropped once the lease runs out, the next time the clinic's gate
runs a script; the scheduler's reconcile pass runs :meth:`ClinicGate.pump` for every
clinic with waiting work, so a clinic that sends nothing new recovers too. A flushed
Redis loses the waiting lists with everything else, and the reconciler queues the work
again, through the gate (``workers.jobs``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from telemed.foundation.tenancy import CLINIC_ID_PATTERN

CLINIC_OPTION = "clinic"  # the message option naming the clinic whose work it is
DEFERRALS_OPTION = "deferrals"  # how often a message was deferred (workers.actors)
_KEY_SAFE = re.compile(r"^[A-Za-z0-9_.:-]+$")

# Shared by the scripts. KEYS[1]: the clinic's slots (id -> lease deadline, ms);
# KEYS[2]: the set of clinics with waiting work (a clinic is in it exactly while one of
# its lists holds a message); KEYS[2 + i]: the clinic's waiting list for queue
# ARGV[5 + i], i = 1..k in promotion order. ARGV[1]: Dramatiq's namespace, ARGV[2]: the
# clinic, ARGV[3]: the limit, ARGV[4]: the lease (ms), ARGV[5]: k.
# The common case (a clinic under its limit, nothing waiting) costs a few commands more
# than Dramatiq's own: expired slots are dropped only when they could matter (the clinic
# is at its limit, or has work waiting).
_PRELUDE = """
local ns, clinic = ARGV[1], ARGV[2]
local limit, lease, k = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = nil

local function clock()
    if not now then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    return now
end

local function expire()
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', clock())
end

-- As Dramatiq's enqueue command does (its dispatch.lua), plus the slot.
local function push(queue, id, payload)
    redis.call('HSET', ns .. ':' .. queue .. '.msgs', id, payload)
    redis.call('RPUSH', ns .. ':' .. queue, id)
    redis.call('ZADD', KEYS[1], clock() + lease, id)
end

local function promote()
    if redis.call('SISMEMBER', KEYS[2], clinic) == 0 then return 0 end
    expire()
    local moved = 0
    while redis.call('ZCARD', KEYS[1]) < limit do
        local entry, queue = false, nil
        for i = 1, k do
            entry = redis.call('LPOP', KEYS[2 + i])
            if entry then queue = ARGV[5 + i]; break end
        end
        if not entry then
            redis.call('SREM', KEYS[2], clinic)
            return moved
        end
        local cut = string.find(entry, '\\n', 1, true)
        push(queue, string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1))
        moved = moved + 1
    end
    for i = 1, k do
        if redis.call('LLEN', KEYS[2 + i]) > 0 then return moved end
    end
    redis.call('SREM', KEYS[2], clinic)
    return moved
end
"""

# ARGV[6 + k]: which of the k queues (1-based), then the message's Redis id, its
# encoded body, and '1' if it has run before. Returns 1 when queued, 0 when it waits.
_ADMIT = _PRELUDE + """
local target = tonumber(ARGV[6 + k])
local id, payload, returning = ARGV[7 + k], ARGV[8 + k], ARGV[9 + k]
local taken = redis.call('ZCARD', KEYS[1])
if taken >= limit then
    expire()
    taken = redis.call('ZCARD', KEYS[1])
end
if taken < limit and redis.call('SISMEMBER', KEYS[2], clinic) == 0 then
    push(ARGV[5 + target], id, payload)
    return 1
end
local entry = id .. '\\n' .. payload
if returning == '1' then
    redis.call('LPUSH', KEYS[2 + target], entry)
else
    redis.call('RPUSH', KEYS[2 + target], entry)
end
redis.call('SADD', KEYS[2], clinic)
promote()
return 0
"""

# ARGV[6 + k]: the message's Redis id ('' for none: only expire and promote), then, to
# acknowledge it as well, the worker's acks set and the queue's message hash ('' not to).
# As Dramatiq's ack command: a message no longer in this worker's acks set was handed to
# another worker (this one was thought dead): it still holds its slot there.
# Returns how many waiting messages were moved onto their queues.
_RELEASE = _PRELUDE + """
local id, acks, msgs = ARGV[6 + k], ARGV[7 + k], ARGV[8 + k]
if acks ~= '' then
    if redis.call('SREM', acks, id) == 0 then return promote() end
    redis.call('HDEL', msgs, id)
end
if id ~= '' then redis.call('ZREM', KEYS[1], id) end
return promote()
"""


def gate_clinic(options: Mapping[str, Any]) -> str | None:
    """The clinic a message's work belongs to, if it names a valid one."""
    clinic = options.get(CLINIC_OPTION)
    if isinstance(clinic, str) and CLINIC_ID_PATTERN.match(clinic):
        return clinic
    return None


def has_run_before(options: Mapping[str, Any]) -> bool:
    """A retry or a deferral coming back from its delay: it was admitted once already."""
    return bool(options.get("retries") or options.get(DEFERRALS_OPTION))


def gate_of(broker: object) -> ClinicGate | None:
    """The gate of a broker built with one (``workers.queue.broker.build_broker``)."""
    gate = getattr(broker, "gate", None)
    return gate if isinstance(gate, ClinicGate) else None


@dataclass
class ClinicGate:
    """The scripts on one Redis, for one namespace (Dramatiq's)."""

    client: redis.Redis
    namespace: str
    limit: int
    lease_ms: int
    # Waiting messages are promoted in this order of their queues.
    queues: Sequence[str]
    _scripts: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a clinic gate's limit is at least 1 (no gate: do not build one)")
        if self.lease_ms < 1:
            raise ValueError("a clinic gate's lease is at least 1 ms")
        self.queues = tuple(self.queues)
        for queue in self.queues:  # in Redis keys, and in the Lua scripts' key names
            if not _KEY_SAFE.match(queue):
                raise ValueError(f"queue name {queue!r} cannot be gated")
        self._scripts = {"admit": self.client.register_script(_ADMIT),
                         "release": self.client.register_script(_RELEASE)}

    def gates(self, queue_name: str) -> bool:
        return queue_name in self.queues

    def admit(self, queue_name: str, redis_id: str, clinic: str, payload: bytes, *, returning: bool) -> bool:
        """Queue the message now (True) or put it in the clinic's waiting list (False)."""
        target = self.queues.index(queue_name) + 1
        args = [*self._args(clinic), target, redis_id, payload, "1" if returning else "0"]
        return bool(self._scripts["admit"](keys=self._keys(clinic), args=args))

    def release(self, clinic: str, redis_id: str = "", *, acks: str = "", msgs: str = "") -> int:
        """Give the message's slot back and promote waiting messages; with ``acks`` and
        ``msgs``, acknowledge it first, as Dramatiq's ack does. Returns how many moved."""
        args = [*self._args(clinic), redis_id, acks, msgs]
        return int(self._scripts["release"](keys=self._keys(clinic), args=args))

    def pump(self) -> int:
        """Expire lost slots and promote, for every clinic with waiting work (the
        reconciler's pass: a clinic that sends nothing new still drains)."""
        return sum(self.release(clinic) for clinic in sorted(self.backlogged()))

    def backlogged(self) -> set[str]:
        """Clinics with messages waiting at the gate."""
        return {m.decode() if isinstance(m, bytes) else str(m) for m in self.client.smembers(self.backlog_key)}

    def in_flight(self, clinic: str) -> int:
        """Slots taken, as last counted (expired leases included until a script runs)."""
        return int(self.client.zcard(self.flight_key(clinic)))

    def waiting(self, clinic: str) -> dict[str, int]:
        return {q: int(self.client.llen(self.wait_key(clinic, q))) for q in self.queues}

    # Keys ---------------------------------------------------------------------------------

    @property
    def backlog_key(self) -> str:
        return f"{self.namespace}:gate:backlog"

    # A clinic's own keys live under "<namespace>:clinic:<id>:", which a clinic's erasure
    # sweeps whole (workers.clinic_redis); the backlog set is shared.
    def flight_key(self, clinic: str) -> str:
        return f"{self.namespace}:clinic:{clinic}:gate:flight"

    def wait_key(self, clinic: str, queue_name: str) -> str:
        return f"{self.namespace}:clinic:{clinic}:gate:wait.{queue_name}"

    def _keys(self, clinic: str) -> list[str]:
        return [self.flight_key(clinic), self.backlog_key, *(self.wait_key(clinic, q) for q in self.queues)]

    def _args(self, clinic: str) -> list[object]:
        return [self.namespace, clinic, self.limit, self.lease_ms, len(self.queues), *self.queues]

