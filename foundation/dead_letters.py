"""Dramatiq's dead letters in Redis: list, show, retry and purge them, with their reasons.

The Redis broker moves a message that failed for good to ``{namespace}:{queue}.XQ`` (a
sorted set of message ids scored by when they died) and ``{namespace}:{queue}.XQ.msgs``
(id → encoded message). The reason travels in the message's options: ``traceback`` (set by
Dramatiq's Retries) and ``failure`` (``Type: message`` of the final exception, written by
``workers.queue.metrics_middleware`` when the message is dead-lettered). Both are scrubbed of
secrets before they are shown. Messages carry ids only, so nothing else here is secret.

Used by ``telemed dlq`` and the admin page; it needs only a Redis client, and re-sending
goes through a callback so the web process never imports the actors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from telemed.foundation.redaction import scrub_text


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    retries: int
    failed_at: datetime
    reason: str
    traceback: str = field(repr=False)

    def summary(self) -> str:
        return f"{self.actor}({', '.join(json.dumps(a) for a in self.args)})"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _xq(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.XQ"


def queues(client: redis.Redis, namespace: str, known: Iterable[str] = ()) -> list[str]:
    """Queues that have (or may have) dead letters: the known ones plus any found in Redis."""
    found = set(known)
    prefix = f"{namespace}:"
    for key in client.scan_iter(match=f"{namespace}:*.XQ", count=500):
        name = _text(key)
        found.add(name[len(prefix):-len(".XQ")])
    return sorted(found)


def _reason(options: dict[str, Any]) -> tuple[str, str]:
    trace = str(options.get("traceback") or "")
    failure = str(options.get("failure") or "")
    if not failure and trace:
        lines = [line for line in trace.strip().splitlines() if line.strip()]
        failure = lines[-1] if lines else ""
    return scrub_text(failure or "no reason recorded")[:500], scrub_text(trace)


def _decode(queue: str, message_id: str, raw: bytes | str, score: float) -> DeadLetter:
    data = json.loads(raw)
    options = data.get("options") or {}
    reason, trace = _reason(options)
    return DeadLetter(
        message_id=message_id, queue=queue, actor=str(data.get("actor_name", "?")),
        args=list(data.get("args") or []), kwargs=dict(data.get("kwargs") or {}),
        retries=int(options.get("retries", 0)), failed_at=datetime.fromtimestamp(score / 1000, UTC),
        reason=reason, traceback=trace,
    )


def list_dead(client: redis.Redis, namespace: str, known_queues: Iterable[str] = (),
              limit: int = 1000) -> list[DeadLetter]:
    """Newest first, across queues."""
    letters: list[DeadLetter] = []
    for queue in queues(client, namespace, known_queues):
        entries: list[tuple[bytes, float]] = client.zrevrange(  # type: ignore[assignment]
            _xq(namespace, queue), 0, limit - 1, withscores=True)
        if not entries:
            continue
        raws: list[bytes | None] = client.hmget(  # type: ignore[assignment]
            _xq(namespace, queue) + ".msgs", [member for member, _ in entries])
        for (member, score), raw in zip(entries, raws, strict=True):
            if raw is not None:
                letters.append(_decode(queue, _text(member), raw, float(score)))
    letters.sort(key=lambda d: d.failed_at, reverse=True)
    return letters[:limit]


def get_dead(client: redis.Redis, namespace: str, message_id: str,
             known_queues: Iterable[str] = ()) -> DeadLetter | None:
    for queue in queues(client, namespace, known_queues):
        key = _xq(namespace, queue)
        score = client.zscore(key, message_id)
        raw = client.hget(key + ".msgs", message_id)
        if score is not None and raw is not None:
            return _decode(queue, message_id, raw, float(score))  # type: ignore[arg-type]
    return None


def remove(client: redis.Redis, namespace: str, letter: DeadLetter) -> None:
    key = _xq(namespace, letter.queue)
    pipe = client.pipeline()
    pipe.zrem(key, letter.message_id)
    pipe.hdel(key + ".msgs", letter.message_id)
    pipe.execute()


def retry(client: redis.Redis, namespace: str, letter: DeadLetter, resend: Callable[[DeadLetter], object]) -> None:
    """Send the message again (fresh retries), then drop the dead copy.

    In this order a crash in between leaves a duplicate, never a loss; actors are
    idempotent, so a duplicate is harmless.
    """
    resend(letter)
    remove(client, namespace, letter)


def purge(client: redis.Redis, namespace: str, known_queues: Iterable[str] = ()) -> int:
    total = 0
    for queue in queues(client, namespace, known_queues):
        key = _xq(namespace, queue)
        total += int(client.zcard(key))
        client.delete(key, key + ".msgs")
    return total


def count_by_queue(client: redis.Redis, namespace: str, known_queues: Iterable[str] = ()) -> dict[str, int]:
    return {queue: int(client.zcard(_xq(namespace, queue))) for queue in queues(client, namespace, known_queues)}
