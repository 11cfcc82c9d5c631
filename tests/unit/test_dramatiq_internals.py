"""What telemed relies on in the installed Dramatiq beyond its documented API.

pyproject pins ``dramatiq[redis]`` to the versions these hold for; a new version that
changes one of them fails here, before the pin is widened, instead of in production:

- ``RedisBroker.do_<command>`` runs ``<command>`` through the dispatch script, and each
  command runs maintenance with a chance of ``maintenance_chance`` out of
  ``MAINTENANCE_SCALE`` (the heartbeat thread's handle, ``workers.queue.broker.maintainer``);
- the consumer ``RedisBroker.consume`` builds raises ``DecodeError`` for a body it cannot
  decode, having taken only that body from its prefetched batch
  (``workers.queue.poison.PoisonAwareConsumer``);
- the Redis keys and the ``redis_message_id`` option that ``workers.queue.poison`` and
  ``foundation.dead_letters`` read and write;
- what the clinic gate's scripts do in place of Dramatiq's ``enqueue`` and ``ack`` commands
  (``workers.queue.clinic_gate``), the consumer's prefetch count its ack keeps, and the
  worker moving a due delayed message back through ``Broker.enqueue``
  (``workers.queue.gated_broker``).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import dramatiq.brokers.redis as dramatiq_redis
import pytest
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.errors import DecodeError
from dramatiq.message import Message

from telemed.workers.queue.broker import maintainer

DISPATCH = Path(dramatiq_redis.__file__).with_name("redis") / "dispatch.lua"


def _broker() -> RedisBroker:
    # A client that is never used to connect: nothing here talks to Redis.
    return RedisBroker(client=redis.Redis(), namespace="guard", heartbeat_timeout=5_000, middleware=[])


def test_the_maintainer_runs_maintenance_on_every_command_under_the_worker_id() -> None:
    broker = _broker()
    handle = maintainer(broker)
    assert handle.broker_id == broker.broker_id
    assert (handle.namespace, handle.heartbeat_timeout, handle.client) == (
        broker.namespace, broker.heartbeat_timeout, broker.client)
    assert callable(handle.do_qsize)
    # The private decision the constructor's maintenance_chance feeds: certain, for qsize.
    assert all(handle._should_do_maintenance("qsize") for _ in range(1_000))
    never = RedisBroker(client=redis.Redis(), maintenance_chance=0, middleware=[])
    assert not any(never._should_do_maintenance("qsize") for _ in range(1_000))
    assert MAINTENANCE_SCALE == 1_000_000  # workers.queue.broker.MAINTENANCE_CHANCE is 1 % of it


def test_the_dispatch_script_takes_the_worker_id_and_the_maintenance_flag_where_dramatiq_passes_them() -> None:
    source = inspect.getsource(RedisBroker._dispatch)
    passed = re.search(r"args = \[(.*?)\*args", source, re.S)
    assert passed is not None
    assert [a.strip() for a in passed.group(1).split(",") if a.strip()] == [
        "command", "timestamp", "queue_name", "self.broker_id", "self.heartbeat_timeout",
        "self.dead_message_ttl", "self._should_do_maintenance(command)", "self._max_unpack_size()",
    ]
    assert "local worker_id = ARGV[4]" in DISPATCH.read_text()
    assert "local do_maintenance = ARGV[7]" in DISPATCH.read_text()


def test_the_redis_keys_are_where_poison_and_dead_letters_look() -> None:
    lua = DISPATCH.read_text()
    for line in (
        'local acks = namespace .. ":__acks__." .. worker_id',
        'local queue_acks = acks .. "." .. queue_name',
        'local queue_full_name = namespace .. ":" .. queue_name',
        'local queue_messages = queue_full_name .. ".msgs"',
        'local xqueue_full_name = namespace .. ":" .. queue_canonical_name .. ".XQ"',
        'local xqueue_messages = xqueue_full_name .. ".msgs"',
    ):
        assert line in lua, line
    assert '"redis_message_id": str(uuid4())' in inspect.getsource(RedisBroker.enqueue)


def test_the_consumer_raises_decode_error_for_one_body_and_keeps_the_rest() -> None:
    consumer = RedisBroker.consume(_broker(), "work", prefetch=2, timeout=100)
    good = Message(queue_name="work", actor_name="noop", args=(), kwargs={}, options={"redis_message_id": "r-2"})
    consumer.message_cache = [b"not a message", good.encode()]  # as if fetched in one batch
    with pytest.raises(DecodeError) as raised:
        next(consumer)
    assert raised.value.data == b"not a message"
    assert next(consumer).message_id == good.message_id


def _command(lua: str, name: str) -> list[str]:
    """The lines of one dispatch command's branch, stripped, comments and blanks left out."""
    body = lua.split(f'command == "{name}" then', 1)[1].split("\nelseif", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("--")]


def test_the_enqueue_and_ack_commands_are_what_the_gate_scripts_do_in_their_place() -> None:
    lua = DISPATCH.read_text()
    assert _command(lua, "enqueue") == [
        "local message_id = ARGS[1]", "local message_data = ARGS[2]",
        'redis.call("hset", queue_messages, message_id, message_data)',
        'redis.call("rpush", queue_full_name, message_id)',
    ]
    assert _command(lua, "ack") == [
        "local message_id = ARGS[1]", 'if redis.call("srem", queue_acks, message_id) > 0 then',
        'redis.call("hdel", queue_messages, message_id)', "end",
    ]


def test_the_consumers_ack_keeps_its_prefetch_count_and_the_worker_requeues_due_messages_by_enqueue() -> None:
    from dramatiq.brokers.redis import _RedisConsumer
    from dramatiq.worker import _ConsumerThread

    assert "self.queued_message_ids.discard(message.message_id)" in inspect.getsource(_RedisConsumer.ack)
    moving = inspect.getsource(_ConsumerThread.handle_delayed_messages)
    assert "self.broker.enqueue(new_message)" in moving  # no delay: through the gate's admit
    enqueue = inspect.getsource(RedisBroker.enqueue)
    for step in ('self.emit_before("enqueue", message, delay)', 'self.emit_after("enqueue", message, delay)',
                 'queue_name = dq_name(queue_name)'):
        assert step in enqueue
