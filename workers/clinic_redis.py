"""A clinic's state in Redis, found and erased (the Redis half of deleting a clinic).

What Redis holds for a clinic, and how each is found:

- its Zoom server-to-server token, cached (encrypted) under a hash of its app and
  account ids (``zoom.tokens.account_token_keys``), with the refresh lock beside it;
- each of its doctors' token lock and rescue slot (a rescue slot may hold a sealed token
  pair: ``zoom.user_tokens.user_token_keys``);
- its work: queued and delayed messages, and dead letters, whose arguments are its keys
  or ids of its rows (``workers.queue.ownership``);
- keys that name one of its scoped keys (``…:<clinic>/<id>``: sync locks, the daily-quota
  waits) and every key under ``{namespace}:clinic:<clinic>:`` — the place for any state
  kept per clinic (the admission gate's waiting lists), so that one pattern erases it.

Removing a queued message deletes its body from the queue's hash and its id from the
list; a worker that already fetched it finds nothing to acknowledge or dead-letter when
it is done, so it leaves no trace either. Short-lived counters that name no clinic key
(the Zoom pacer's slots and the per-host daily counts, under hashes) expire on their own
within a day; docs/operations.md says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from telemed.foundation import dead_letters
from telemed.foundation.tenancy import DEFAULT_CLINIC, SEPARATOR
from telemed.workers.queue.work_queue import QUEUES
from telemed.zoom.tokens import account_token_keys
from telemed.zoom.user_tokens import user_token_keys

Owners = Callable[[Sequence[tuple[str, Sequence[Any]]]], list[str | None]]
_SCAN = 500


def clinic_key_prefix(namespace: str, clinic_id: str) -> str:
    """Where state kept per clinic lives in Redis: ``{namespace}:clinic:<clinic>:``."""
    return f"{namespace}:clinic:{clinic_id}:"


def clinic_key_patterns(namespace: str, clinic_id: str) -> list[str]:
    """SCAN patterns of the keys that belong to ``clinic_id`` by name."""
    # Clinic ids are a-z, 0-9 and '-' and namespaces have no glob characters either.
    # '/' is in no contract id, so ":<clinic>/" only ever starts one of the clinic's keys.
    return [clinic_key_prefix(namespace, clinic_id) + "*", f"{namespace}:*:{clinic_id}{SEPARATOR}*"]


@dataclass(frozen=True, repr=False)
class RedisFacts:
    """What names the clinic's token keys (read from the store before its rows go)."""

    zoom_account_id: str | None = None
    zoom_client_id: str | None = None
    doctor_ids: tuple[str, ...] = ()


@dataclass
class RedisReport:
    removed: dict[str, int] = field(default_factory=lambda: {
        "queued messages": 0, "dead letters": 0, "zoom token keys": 0, "clinic keys": 0})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def erase_clinic_state(client: redis.Redis, namespace: str, clinic_id: str, owners: Owners,
                       facts: RedisFacts = RedisFacts(), queues: Iterable[str] = QUEUES) -> RedisReport:
    """Delete everything of ``clinic_id`` in Redis; safe to run again (it finds nothing)."""
    if clinic_id == DEFAULT_CLINIC:
        raise ValueError("the default clinic's Redis state is the deployment's; it is never erased")
    report = RedisReport()
    queue_names = sorted(set(queues))
    report.removed["queued messages"] = _erase_queued(client, namespace, clinic_id, owners, queue_names)
    report.removed["dead letters"] = _erase_dead(client, namespace, clinic_id, owners, queue_names)
    token_keys: list[str] = []
    if facts.zoom_account_id and facts.zoom_client_id:
        token_keys.extend(account_token_keys(namespace, facts.zoom_account_id, facts.zoom_client_id))
    for doctor_id in facts.doctor_ids:
        token_keys.extend(user_token_keys(namespace, doctor_id))
    for start in range(0, len(token_keys), _SCAN):
        report.removed["zoom token keys"] += int(client.delete(*token_keys[start:start + _SCAN]))
    for pattern in clinic_key_patterns(namespace, clinic_id):
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=_SCAN):
            batch.append(key)
            if len(batch) >= _SCAN:
                report.removed["clinic keys"] += int(client.delete(*batch))
                batch = []
        if batch:
            report.removed["clinic keys"] += int(client.delete(*batch))
    # The clinic gate's set of clinics with a backlog (workers.queue.clinic_gate) is shared.
    report.removed["clinic keys"] += int(client.srem(f"{namespace}:gate:backlog", clinic_id))
    return report


def _erase_queued(client: redis.Redis, namespace: str, clinic_id: str, owners: Owners,
                  queues: Sequence[str]) -> int:
    # Ready and delayed messages of the known queues, and of any other queue found in Redis.
    names = {n for queue in queues for n in (queue, f"{queue}.DQ")}
    for raw in client.scan_iter(match=f"{namespace}:*.msgs", count=_SCAN):
        name = _text(raw)[len(namespace) + 1:-len(".msgs")]
        if not name.endswith(".XQ"):  # dead letters: _erase_dead
            names.add(name)
    removed = 0
    for name in sorted(names):
        messages_key, list_key = f"{namespace}:{name}.msgs", f"{namespace}:{name}"
        cursor: int = 0
        while True:
            cursor, entries = client.hscan(messages_key, cursor, count=_SCAN)  # type: ignore[misc]
            removed += _drop_owned(client, messages_key, list_key, clinic_id, owners, entries)
            if int(cursor) == 0:
                break
    return removed


def _drop_owned(client: redis.Redis, messages_key: str, list_key: str, clinic_id: str, owners: Owners,
                entries: Any) -> int:
    decoded: list[tuple[str, tuple[str, Sequence[Any]]]] = []
    for raw_id, raw in dict(entries).items():
        try:
            data = json.loads(raw)
            decoded.append((_text(raw_id), (str(data.get("actor_name", "")), list(data.get("args") or []))))
        except (ValueError, AttributeError):
            continue  # not a message this code can read: the poison-message middleware's business
    if not decoded:
        return 0
    owned = [message_id for (message_id, _), owner in zip(decoded, owners([m for _, m in decoded]), strict=True)
             if owner == clinic_id]
    if owned:
        pipe = client.pipeline()
        for message_id in owned:
            pipe.hdel(messages_key, message_id)
            pipe.lrem(list_key, 0, message_id)
        pipe.execute()
    return len(owned)


def _erase_dead(client: redis.Redis, namespace: str, clinic_id: str, owners: Owners, queues: Sequence[str]) -> int:
    letters = dead_letters.list_dead(client, namespace, queues, limit=10_000_000)
    found = owners([(letter.actor, letter.args) for letter in letters]) if letters else []
    removed = 0
    for letter, owner in zip(letters, found, strict=True):
        if owner == clinic_id:
            dead_letters.remove(client, namespace, letter)
            removed += 1
    return removed
