"""Poison messages: whatever lands on a queue, it ends in the dead letters with a reason,
at once, and never stops or starves a worker.

Found by ``tests/fuzz/test_poison_messages.py``, which puts messages straight onto Redis:

- A body that is not a Dramatiq message (not JSON, or JSON of another shape) made
  Dramatiq's consumer raise and restart: the body itself stayed in the worker's
  acknowledgement set for ever (never dead-lettered) and so did every message fetched in
  the same batch, stranded until that worker process died. :class:`PoisonAwareRedisBroker`
  moves such a body to the queue's dead letters, as a readable stand-in message whose
  ``failure`` says why, and carries on with the rest of the batch.
- Arguments of the wrong shape (``process_event(123)``, ``deliver_notification("x")``, a
  missing or extra argument) failed inside the actor with database errors that look
  transient, so Dramatiq retried them with backoff for many minutes first.
  :class:`ArgumentCheck` checks each message against its actor's signature and type hints
  before it runs and dead-letters a mismatch with the reason.
- A message for an actor nobody declared is dead-lettered by Dramatiq itself, but with no
  reason; :meth:`ArgumentCheck.before_nack` records the exception as the reason.

Messages carry ids only, so nothing here handles secrets; the preview of an undecodable
body is scrubbed and cut short anyway.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import time
import typing
import uuid
from collections.abc import Iterable
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name
from dramatiq.errors import DecodeError
from dramatiq.message import Message
from dramatiq.middleware import SkipMessage

from telemed.foundation.redaction import scrub_text

log = structlog.get_logger("telemed.workers.poison")
UNDECODABLE_ACTOR = "(undecodable message)"
_SIMPLE = (str, int, float, bool, dict, list)


class PoisonAwareConsumer(Consumer):  # type: ignore[misc]
    """Dramatiq's own Redis consumer (from the public ``RedisBroker.consume``), wrapped:
    an undecodable body goes to the dead letters instead of restarting the consumer, and a
    consumer whose prefetched messages are all in flight waits for an ack."""

    def __init__(self, broker: RedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        self.broker, self.queue_name, self.prefetch, self.timeout = broker, queue_name, prefetch, timeout
        # Dramatiq's consumer as Dramatiq builds it, not through our capped ``consume``.
        self.inner = RedisBroker.consume(broker, queue_name, prefetch=prefetch, timeout=timeout)
        self._in_flight: set[str] = set()  # handed to the worker, not yet acked or nacked
        self._slot_freed = threading.Event()

    def __iter__(self) -> PoisonAwareConsumer:
        return self

    def __next__(self) -> Any:
        while True:
            if self._saturated():
                return self._wait_for_a_free_slot()
            try:
                message = next(self.inner)
            except DecodeError as exc:
                # The body was popped from the prefetched batch; the rest is still there.
                dead_letter_undecodable(self.broker, self.queue_name, exc.data, exc.error)
                continue
            if message is not None:
                self._in_flight.add(message.message_id)
            return message

    def _saturated(self) -> bool:
        # Dramatiq fetches at most ``prefetch`` minus what is in flight, so with ``prefetch``
        # in flight nothing prefetched is left to hand out.
        return len(self._in_flight) >= self.prefetch

    def _wait_for_a_free_slot(self) -> None:
        """Every prefetched message is still being worked on. Dramatiq would sleep its
        idle-queue backoff here (up to the poll timeout, and growing), although the queue
        is busy: a worker thread that acks meanwhile then finds no next message and idles.
        Measured with 1 thread: 8 % of its time. Wait for an ack instead."""
        self._slot_freed.clear()
        if self._saturated():  # checked after clear(): an ack in between is not lost
            self._slot_freed.wait(self.timeout / 1000)
        return None  # the consumer thread then checks delayed messages and shutdown

    # A message written to Redis by hand may lack the Redis id Dramatiq's enqueue adds to
    # its options; acking or nacking it then failed and it stayed fetched for ever.
    def ack(self, message: Any) -> None:
        self._restore_redis_id(message)
        try:
            self.inner.ack(message)
        finally:
            self._free(message)

    def nack(self, message: Any) -> None:
        self._restore_redis_id(message)
        try:
            self.inner.nack(message)
        finally:
            self._free(message)

    def requeue(self, messages: Iterable[Any]) -> None:
        self.inner.requeue(messages)

    def close(self) -> None:
        self.inner.close()

    def _free(self, message: Any) -> None:
        self._in_flight.discard(message.message_id)
        self._slot_freed.set()

    def _restore_redis_id(self, message: Any) -> None:
        if "redis_message_id" in message.options:
            return
        found = _fetched_id(self.broker, self.queue_name, lambda raw: _message_id_of(raw) == message.message_id)
        message.options["redis_message_id"] = found or message.message_id


IDLE_POLL_MS = 100  # the longest pause between polls of an empty queue


class PoisonAwareRedisBroker(RedisBroker):  # type: ignore[misc]
    """Dramatiq's Redis broker whose consumers dead-letter bodies they cannot decode."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> PoisonAwareConsumer:
        # An empty queue is polled with a backoff that grows up to ``timeout`` (the
        # worker's 1 s by default), so a message sent to a queue that has just been idle
        # waits up to a second before anyone looks. A booking crosses three queues; at
        # 100 ms the wait is short and an idle worker costs a few Redis calls a second.
        return PoisonAwareConsumer(self, queue_name, prefetch, min(timeout, IDLE_POLL_MS))


def dead_letter_undecodable(broker: Any, queue_name: str, data: Any, error: BaseException | None) -> str | None:
    """Move the undecodable ``data`` from this worker's fetched set to the dead letters."""
    raw = data if isinstance(data, bytes) else str(data).encode("utf-8", "replace")
    client = broker.client
    queue_messages = f"{broker.namespace}:{queue_name}.msgs"
    acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
    redis_id = _fetched_id(broker, queue_name, lambda body: body == raw)
    while isinstance(error, DecodeError):  # Dramatiq wraps its encoder's DecodeError in another
        error = error.error
    cause = f"{type(error).__name__}: {error}" if error is not None else "DecodeError"
    reason = scrub_text(f"undecodable message: {cause}")[:300]
    stand_in: Message[None] = Message(
        queue_name=q_name(queue_name), actor_name=UNDECODABLE_ACTOR, args=(), kwargs={},
        options={"failure": reason, "body_bytes": len(raw),
                 "body_preview": scrub_text(raw[:120].decode("utf-8", "replace"))},
        message_id=redis_id or str(uuid.uuid4()),
    )
    dead = f"{broker.namespace}:{q_name(queue_name)}.XQ"
    pipe = client.pipeline()
    pipe.zadd(dead, {stand_in.message_id: int(time.time() * 1000)})
    pipe.hset(dead + ".msgs", stand_in.message_id, stand_in.encode())
    if redis_id is not None:
        pipe.hdel(queue_messages, redis_id)
        pipe.srem(acks, redis_id)
    pipe.execute()
    log.error("undecodable message moved to the dead letters", queue=q_name(queue_name),
              message_id=stand_in.message_id, reason=reason)
    return redis_id


def _fetched_id(broker: Any, queue_name: str, matches: Any) -> str | None:
    """The Redis id of a message this worker fetched, found by its stored body."""
    client = broker.client
    queue_messages = f"{broker.namespace}:{queue_name}.msgs"
    for member in client.smembers(f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"):
        body = client.hget(queue_messages, member)
        if body is not None and matches(body):
            return member.decode() if isinstance(member, bytes) else str(member)
    return None


def _message_id_of(raw: bytes) -> Any:
    try:
        return json.loads(raw).get("message_id")
    except (ValueError, AttributeError):
        return None


class ArgumentCheck(dramatiq.Middleware):
    """Dead-letter a message whose arguments cannot fit its actor, before it runs."""

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        actor = broker.get_actor(message.actor_name)
        problem = argument_problem(actor.fn, tuple(message.args), dict(message.kwargs))
        if problem is None:
            return
        message.options["failure"] = f"PermanentFailure: bad arguments for {actor.actor_name}: {problem}"[:500]
        log.error("message with bad arguments moved to the dead letters", actor=actor.actor_name, problem=problem)
        message.fail()
        raise SkipMessage(problem)

    def before_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        exception = getattr(message, "_exception", None)
        if "failure" not in message.options and exception is not None:
            message.options["failure"] = scrub_text(f"{type(exception).__name__}: {exception}")[:500]


@functools.lru_cache(maxsize=256)
def _shape(fn: Any) -> tuple[inspect.Signature, dict[str, Any] | None]:
    """An actor's signature and type hints, worked out once per actor, not per message."""
    try:
        hints = typing.get_type_hints(inspect.unwrap(fn))
    except Exception:  # noqa: BLE001
        hints = None
    return inspect.signature(fn), hints


def argument_problem(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Why these arguments cannot be a call of ``fn`` (count, names, simple types), or None."""
    signature, hints = _shape(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    if hints is None:  # unresolvable hints: the count was all we could check
        return None
    for name, value in bound.arguments.items():
        expected = typing.get_origin(hints.get(name)) or hints.get(name)
        if expected not in _SIMPLE:
            continue
        wrong_bool = isinstance(value, bool) and expected is not bool
        if wrong_bool or not isinstance(value, expected):
            return f"{name} must be {expected.__name__}, not {type(value).__name__}"
    return None
