"""``telemed dlq``: dead letters from a real worker, listed with reasons, retried and purged."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import redis
from dramatiq.message import Message

from telemed.events.publish import Publisher
from telemed.foundation import dead_letters
from telemed.samples import booking

pytestmark = pytest.mark.integration


def _send(pipeline, actor: str, queue: str, *args: object) -> None:  # type: ignore[no-untyped-def]
    pipeline.broker.enqueue(Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={}))


def _dead(pipeline) -> list[dead_letters.DeadLetter]:  # type: ignore[no-untyped-def]
    return dead_letters.list_dead(redis.Redis.from_url(pipeline.redis_url), pipeline.namespace)


def test_list_show_retry_purge(single_pipeline) -> None:  # type: ignore[no-untyped-def]
    pipeline = single_pipeline
    event = booking("Q-1", 1, datetime.now(UTC).replace(microsecond=0) + timedelta(days=2))
    # The message arrives before its event is in the inbox: a permanent failure, dead at once.
    _send(pipeline, "process_event", "events", event["event_id"])
    pipeline.wait_until(lambda: len(_dead(pipeline)) == 1, what="a dead letter")

    listing = pipeline.run_cli("dlq", "list")
    out = listing.stdout.decode()
    assert listing.returncode == 0, listing.stderr.decode()
    assert f'process_event("{event["event_id"]}")' in out
    assert "reason: PermanentFailure: no such event in the inbox" in out
    message_id = re.search(r"^(\S+)\s", out).group(1)  # type: ignore[union-attr]

    shown = pipeline.run_cli("dlq", "show", message_id)
    assert shown.returncode == 0 and "Traceback" in shown.stdout.decode() and "queue:     events" in shown.stdout.decode()

    # Fix the cause (the event reaches the inbox), then retry: the appointment gets its meeting.
    Publisher(database=pipeline.database, enqueue=lambda _: None).publish(json.loads(json.dumps(event)))
    retried = pipeline.run_cli("dlq", "retry", message_id)
    assert retried.returncode == 0 and "1 dead letter(s) sent again" in retried.stdout.decode()
    pipeline.wait_settled()
    assert pipeline.appointments()["Q-1"].state == "provisioned"
    assert _dead(pipeline) == []

    _send(pipeline, "deliver_notification", "notifications", 424242)
    _send(pipeline, "sync_meeting", "meetings", "no-such-appointment")
    pipeline.wait_until(lambda: len(_dead(pipeline)) == 2, what="two dead letters")
    reasons = {d.actor: d.reason for d in _dead(pipeline)}
    assert reasons == {"deliver_notification": "PermanentFailure: no such outbox message",
                       "sync_meeting": "PermanentFailure: no such appointment"}
    purged = pipeline.run_cli("dlq", "purge", "--yes")
    assert "purged 2 dead letter(s)" in purged.stdout.decode()
    assert _dead(pipeline) == []
