"""The broker with the clinic gate (``workers.queue.clinic_gate``) on its queues.

Dramatiq enqueues through ``Broker.enqueue`` everywhere: ``WorkQueue.send``, the Retries
middleware scheduling a retry, and each worker moving a delayed message whose time has
come from its delay queue back onto the work queue. So the gate sits there:

- a message sent with a delay (a retry, a deferral, a deliberate wait) goes to the delay
  queue as before and holds no slot: it is not ready to run;
- a message enqueued ready to run, whose ``clinic`` option names a clinic, goes through
  the admit script (queued, or waiting in its clinic's list); the delay queue's move of a
  due message is such an enqueue, so a retry takes a slot again only when it can run;
- anything else (no clinic: Dramatiq's own callbacks, a hand-made message) is enqueued
  as Dramatiq does, ungated.

The consumer acknowledges a gated message with the release script, which is Dramatiq's
ack and the slot's release in one call; a dead-lettered (nacked) one is released after
Dramatiq's nack.
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import uuid4

import redis
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from telemed.workers.queue.clinic_gate import ClinicGate, gate_clinic, has_run_before
from telemed.workers.queue.poison import IDLE_POLL_MS, PoisonAwareConsumer, PoisonAwareRedisBroker


class GatedConsumer(PoisonAwareConsumer):
    def __init__(self, broker: GatedRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        self.gate = broker.gate if broker.gate is not None and broker.gate.gates(queue_name) else None
        # Dramatiq's keys for this worker and queue (its dispatch.lua).
        self._acks = f"{broker.namespace}:__acks__.{broker.broker_id}.{queue_name}"
        self._msgs = f"{broker.namespace}:{queue_name}.msgs"

    def _clinic(self, message: Any) -> str | None:
        return gate_clinic(message.options) if self.gate is not None else None

    def ack(self, message: Any) -> None:
        clinic = self._clinic(message)
        if clinic is None or self.gate is None:
            super().ack(message)
            return
        self._restore_redis_id(message)
        try:
            self.gate.release(clinic, message.options["redis_message_id"], acks=self._acks, msgs=self._msgs)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # as Dramatiq's ack: the worker tries again
        finally:
            # What Dramatiq's own ack does besides its command: the prefetch count.
            self.inner.queued_message_ids.discard(message.message_id)  # type: ignore[attr-defined]
            self._free(message)

    def nack(self, message: Any) -> None:
        super().nack(message)
        clinic = self._clinic(message)
        if clinic is not None and self.gate is not None:
            # A dead letter is rare; if this fails, the lease gives the slot back.
            with contextlib.suppress(redis.RedisError):
                self.gate.release(clinic, message.options.get("redis_message_id", message.message_id))


class GatedRedisBroker(PoisonAwareRedisBroker):
    """Dramatiq's Redis broker (with the poison handling) whose queues are gated per clinic;
    ``gate=None``: no gate, Dramatiq's enqueue and ack."""

    def __init__(self, *, gate: ClinicGate | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.gate = gate

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> GatedConsumer:
        return GatedConsumer(self, queue_name, prefetch, min(timeout, IDLE_POLL_MS))

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        gate = self.gate
        clinic = gate_clinic(message.options) if gate is not None and delay is None else None
        if gate is None or clinic is None or not gate.gates(message.queue_name):
            return super().enqueue(message, delay=delay)  # type: ignore[no-any-return]
        # As Dramatiq's enqueue (RedisBroker.enqueue), with the admit script for its command.
        message = message.copy(options={"redis_message_id": str(uuid4())})
        self.logger.debug("Enqueueing message %r on queue %r.", message.message_id, message.queue_name)
        self.emit_before("enqueue", message, None)
        gate.admit(message.queue_name, message.options["redis_message_id"], clinic, message.encode(),
                   returning=has_run_before(message.options))
        self.emit_after("enqueue", message, None)
        return message
