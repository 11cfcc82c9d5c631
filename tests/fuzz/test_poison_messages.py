"""Poison messages put straight onto the Redis queues of a real worker process: bodies
that are not messages at all, ids nobody knows, arguments of the wrong type or number,
actors nobody declared. Each ends in the dead letters, soon (no retries with backoff)
and with a reason; the worker keeps running, strands nothing it fetched with them, and
still provisions a booking sent in the middle of the poison.

One backend (the most real configured): the subject is the worker, not the store.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from dramatiq.message import Message
from hypothesis import given
from hypothesis import strategies as st

from telemed.foundation import dead_letters
from telemed.samples import booking
from tests.support.fuzz.settings import fuzz
from tests.support.fuzz.strategies import json_values
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

QUEUES = {"process_event": "events", "process_zoom_webhook": "events", "sync_meeting": "meetings",
          "deliver_notification": "notifications"}
STR_ACTORS = ("process_event", "sync_meeting")
INT_ACTORS = ("deliver_notification", "process_zoom_webhook")


def _push_raw(client: redis.Redis, namespace: str, queue: str, body: bytes | Message) -> str:
    """What Dramatiq's enqueue does, minus every check: a body under an id, the id queued.
    A ``Message`` gets the Redis id in its options as Dramatiq's enqueue would add it."""
    message_id = str(uuid.uuid4())
    if isinstance(body, Message):
        body = body.copy(options={**body.options, "redis_message_id": message_id}).encode()
    client.hset(f"{namespace}:{queue}.msgs", message_id, body)
    client.rpush(f"{namespace}:{queue}", message_id)
    return message_id


def _message(actor: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None,
             queue: str | None = None) -> Message:
    return Message(queue_name=queue or QUEUES.get(actor, "events"), actor_name=actor, args=args,
                   kwargs=kwargs or {}, options={})


not_a_message = st.one_of(
    st.binary(max_size=200).filter(lambda b: not b.startswith(b"{")),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4).map(lambda d: json.dumps(d).encode()),
    st.just(_message("process_event", ("evt-x",)).encode()[:-7]),  # cut short
)
wrong_str = json_values.filter(lambda v: not isinstance(v, str))
wrong_int = json_values.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))


@st.composite
def poison(draw: st.DrawFn) -> tuple[str, bytes | Message]:
    """(queue, body) for one poison message."""
    kind = draw(st.sampled_from(["junk", "unknown id", "wrong type", "arity", "unknown actor"]))
    if kind == "junk":
        return draw(st.sampled_from(sorted(set(QUEUES.values())))), draw(not_a_message)
    if kind == "unknown id":
        actor = draw(st.sampled_from(sorted(QUEUES)))
        # Unique per message: copies of one unknown outbox id at once are "busy" but one.
        big = draw(st.sampled_from([10**9, 2**31, 2**62]))  # fits a database integer, or does not
        arg: Any = (f"nope-{uuid.uuid4().hex[:8]}" if actor in STR_ACTORS
                    else big + uuid.uuid4().int % 10**8)
        return QUEUES[actor], _message(actor, (arg,))
    if kind == "wrong type":
        actor = draw(st.sampled_from(sorted(QUEUES)))
        return QUEUES[actor], _message(actor, (draw(wrong_str if actor in STR_ACTORS else wrong_int),))
    if kind == "arity":
        actor = draw(st.sampled_from(sorted(QUEUES)))
        shape = draw(st.sampled_from(["none", "two", "kwarg"]))
        args: tuple[Any, ...] = {"none": (), "two": ("a", "b"), "kwarg": ("a",)}[shape]
        return QUEUES[actor], _message(actor, args, {"bogus": 1} if shape == "kwarg" else None)
    return "events", _message(draw(st.sampled_from(["no_such_actor", "", "process_event "])), ("x",), queue="events")


def _short(reason: str) -> str:
    """``undecodable message: KeyError: 'args'`` → ``undecodable message: KeyError``."""
    return ": ".join(reason.split(": ")[:2]) if reason.startswith("undecodable") else reason


def _dead(p: Pipeline) -> list[dead_letters.DeadLetter]:
    return dead_letters.list_dead(redis.Redis.from_url(p.redis_url), p.namespace, limit=10_000)


def _stranded(p: Pipeline) -> int:
    """Messages fetched by a worker and never acknowledged."""
    client = redis.Redis.from_url(p.redis_url)
    return sum(int(client.scard(key)) for key in client.scan_iter(match=f"{p.namespace}:__acks__.*"))


@fuzz(3, fixtures=True, shrink=False)
@given(batch=st.lists(poison(), min_size=12, max_size=20))
def test_poison_goes_to_dead_letters_with_a_reason(single_pipeline: Pipeline, batch: list[tuple[str, bytes | Message]]) -> None:
    p = single_pipeline
    client = redis.Redis.from_url(p.redis_url)
    before = len(_dead(p))
    good = f"PM-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    half = len(batch) // 2
    began = time.monotonic()
    pushed = {_push_raw(client, p.namespace, queue, body): body for queue, body in batch[:half]}
    [result] = p.publish([booking(good, 1, start)])  # a real booking in the middle of the poison
    assert result.status == "accepted"
    pushed.update({_push_raw(client, p.namespace, queue, body): body for queue, body in batch[half:]})

    def missing() -> dict[str, bytes | Message]:
        dead = {d.message_id for d in _dead(p)}
        return {i: b for i, b in pushed.items() if i not in dead}

    try:
        p.wait_until(lambda: not missing(), timeout=60, what=f"{len(batch)} poison messages in the dead letters")
    except AssertionError:
        raise AssertionError(f"never dead-lettered: {missing()}\n{p.worker_log()[-3000:]}") from None
    took = time.monotonic() - began
    p.wait_until(lambda: p.appointments().get(good) is not None and p.appointments()[good].state == "provisioned",
                 timeout=60, what="the good booking, sent between the poison, to be provisioned")
    p.wait_until(lambda: _stranded(p) == 0, timeout=30, what="nothing left fetched and unacknowledged")

    letters = _dead(p)
    assert len(letters) == before + len(batch), [(d.actor, d.args, d.reason) for d in letters]
    for letter in letters:
        assert letter.reason and letter.reason != "no reason recorded", (letter.actor, letter.args)
        assert "Traceback" not in letter.reason
    assert took < 45, f"poison took {took:.0f} s to reach the dead letters: retried with backoff?"
    assert all(w.poll() is None for w in p.workers), "a poison message stopped the worker"
    undecodable = [d for d in letters if d.actor == "(undecodable message)"]
    assert all(d.reason.startswith("undecodable message") for d in undecodable)


def test_dead_letters_name_the_problem(single_pipeline: Pipeline) -> None:
    """Each kind of poison, with the reason an operator reads in ``telemed dlq list``."""
    p = single_pipeline
    client = redis.Redis.from_url(p.redis_url)
    cases = {
        "junk": ("events", b"\x00\xffnot a message"),
        "shape": ("meetings", b'{"queue_name": "meetings"}'),
        "id type": ("notifications", _message("deliver_notification", ("12",))),
        "arity": ("events", _message("process_event", ())),
        "unknown id": ("meetings", _message("sync_meeting", ("no-such-appointment",))),
        "actor": ("events", _message("no_such_actor", ("x",))),
        "hand-written": ("meetings", _message("sync_meeting", (7,)).encode()),  # no Redis id in its options
        # Beyond PostgreSQL's integer: its delivery and its give-up (the admin alert) both
        # fail on the id; the give-up's failure used to escape undecided and be retried.
        "id out of range": ("notifications", _message("deliver_notification", (2**31 + 7,))),
    }
    postgres = p.database_url.startswith("postgresql")
    for queue, body in cases.values():
        _push_raw(client, p.namespace, queue, body)
    p.wait_until(lambda: len(_dead(p)) == len(cases), timeout=60, what="every poison message in the dead letters")
    reasons = [_short(d.reason) for d in _dead(p)]
    assert sorted(reasons) == sorted([
        "undecodable message: UnicodeDecodeError",
        "undecodable message: KeyError",
        "PermanentFailure: bad arguments for deliver_notification: outbox_id must be int, not str",
        "PermanentFailure: bad arguments for process_event: missing a required argument: 'event_id'",
        "PermanentFailure: no such appointment",
        "ActorNotFound: no_such_actor",
        "PermanentFailure: bad arguments for sync_meeting: appointment_id must be str, not int",
        "PermanentFailure: the database refused a value: integer out of range" if postgres
        else "PermanentFailure: no such outbox message",  # SQLite's integers have 64 bits
    ]), reasons
    listing = p.run_cli("dlq", "list")
    assert listing.returncode == 0 and "Traceback" not in listing.stdout.decode() + listing.stderr.decode()
    assert "undecodable message: UnicodeDecodeError" in listing.stdout.decode()
