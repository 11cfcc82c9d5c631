"""Fairness between clinics, the decisions: which clinic a message's work belongs to, which
messages return to the front of a clinic's line, and a busy Zoom pacer deferring work
(queued again for later, not a failed try) instead of holding a worker thread."""

from __future__ import annotations

import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage, Retries

from telemed.foundation.settings import Settings
from telemed.workers import actors as actors_module
from telemed.workers.actors import declare_actors
from telemed.workers.policy import retries
from telemed.workers.policy.retries import (
    ACTOR_MAX_RETRIES,
    DEFER_MIN_MS,
    DEFER_SPREAD,
    Defer,
    Retry,
    decide,
    enact,
    may_defer,
    pacing_delay_ms,
)
from telemed.workers.queue.broker import build_broker
from telemed.workers.queue.clinic_gate import ClinicGate, gate_clinic, gate_of, has_run_before
from telemed.workers.queue.gated_broker import GatedRedisBroker
from telemed.workers.queue.work_queue import (
    ACTOR_QUEUES,
    PROMOTION_ORDER,
    QUEUES,
    SYNC_MEETING,
    WorkQueue,
    clinic_of_work,
)
from telemed.zoom import ratelimit
from telemed.zoom.errors import ZoomPacingWait, ZoomRateLimited

NEVER_CONNECTED = "redis://127.0.0.1:1/0"


class TestWhoseWork:
    def test_a_key_names_its_clinic_and_a_bare_id_the_default(self) -> None:
        assert clinic_of_work(("north/E-1",)) == "north"
        assert clinic_of_work(("E-1",)) == "default"

    def test_an_int_id_names_none_and_neither_does_a_key_no_clinic_could_have(self) -> None:
        assert clinic_of_work((42,)) is None
        assert clinic_of_work(()) is None
        assert clinic_of_work(("Not A Clinic!/E-1",)) is None

    def test_only_a_valid_clinic_option_is_gated(self) -> None:
        assert gate_clinic({"clinic": "north"}) == "north"
        for options in ({}, {"clinic": ""}, {"clinic": 7}, {"clinic": "../x"}, {"clinic": "A"}):
            assert gate_clinic(options) is None

    def test_a_retry_or_a_deferral_has_run_before_a_new_message_has_not(self) -> None:
        assert has_run_before({"retries": 1}) and has_run_before({"deferrals": 2})
        assert not has_run_before({}) and not has_run_before({"retries": 0})

    def test_the_later_stages_of_a_booking_are_promoted_first(self) -> None:
        assert sorted(PROMOTION_ORDER) == sorted(QUEUES)
        assert PROMOTION_ORDER.index("notifications") < PROMOTION_ORDER.index("meetings") < PROMOTION_ORDER.index(
            "events")


class TestTheWorkQueueNamesTheClinic:
    def _sent(self, send: Callable[[WorkQueue], object]) -> dict[str, Any]:
        broker = StubBroker()
        for queue in QUEUES:
            broker.declare_queue(queue)
        send(WorkQueue(broker))
        [message] = [m for q in QUEUES for m in broker.queues[q].queue]
        return dict(dramatiq.Message.decode(message).options)

    def test_by_the_key_it_carries(self) -> None:
        assert self._sent(lambda q: q.sync_meeting("north/A-1"))["clinic"] == "north"
        assert self._sent(lambda q: q.process_event("E-1"))["clinic"] == "default"

    def test_as_the_caller_says_for_an_outbox_row(self) -> None:
        assert self._sent(lambda q: q.deliver_notification(7, clinic="south"))["clinic"] == "south"

    def test_an_outbox_row_queued_outside_any_message_names_none(self) -> None:
        assert "clinic" not in self._sent(lambda q: q.deliver_notification(7))

    def test_work_a_message_starts_is_its_clinics(self) -> None:
        broker = StubBroker(middleware=[CurrentMessage()])
        for queue in QUEUES:
            broker.declare_queue(queue)
        work = WorkQueue(broker)

        @dramatiq.actor(actor_name="starter", queue_name="events", broker=broker)
        def starter() -> None:
            work.deliver_notification(9)  # an int id: no key to read the clinic from

        broker.enqueue(dramatiq.Message(queue_name="events", actor_name="starter", args=(), kwargs={},
                                        options={"clinic": "north"}))
        worker = dramatiq.Worker(broker, queues={"events"}, worker_timeout=10, worker_threads=1)
        worker.start()
        try:
            broker.join("events", timeout=10_000)
        finally:
            worker.stop()
        [queued] = broker.queues["notifications"].queue
        assert dramatiq.Message.decode(queued).options["clinic"] == "north"


class TestTheBrokerIsGatedBySetting:
    def test_a_limit_builds_the_gate_zero_none(self) -> None:
        client = redis.Redis.from_url(NEVER_CONNECTED)  # built, never connected
        gated = build_broker(client, "t", clinic_in_flight=3, clinic_lease_seconds=2)
        gate = gate_of(gated)
        assert isinstance(gated, GatedRedisBroker) and isinstance(gate, ClinicGate)
        assert (gate.limit, gate.lease_ms, tuple(gate.queues)) == (3, 2000, PROMOTION_ORDER)
        assert gate_of(build_broker(client, "t", clinic_in_flight=0)) is None

    def test_the_settings_default_leaves_threads_of_a_small_deployment_to_other_clinics(self) -> None:
        # telemed worker on a 2-core host: 2 processes x 8 threads.
        assert 0 < Settings().clinic_in_flight < 2 * 8
        assert Settings().clinic_lease_seconds >= 300  # above the worker's 5-minute time limit

    def test_a_gate_refuses_what_it_cannot_key(self) -> None:
        client = redis.Redis.from_url(NEVER_CONNECTED)
        with pytest.raises(ValueError, match="limit"):
            ClinicGate(client, "t", 0, 1000, QUEUES)
        with pytest.raises(ValueError, match="queue name"):
            ClinicGate(client, "t", 1, 1000, ("events", "bad queue"))


class TestPacingDeferral:
    def _wait(self, wait: float = 0.05, waited: float = 0.2) -> ZoomPacingWait:
        return ZoomPacingWait("busy", wait_seconds=wait, waited_seconds=waited)

    @pytest.mark.parametrize("actor", sorted(ACTOR_MAX_RETRIES))
    def test_a_pacing_wait_is_deferred_even_past_the_attempt_limit(self, actor: str) -> None:
        decision = decide(self._wait(), ACTOR_MAX_RETRIES[actor] + 5, actor=actor)
        assert isinstance(decision, Defer)

    def test_other_rate_limits_are_still_retries(self) -> None:
        assert isinstance(decide(ZoomRateLimited("429", retry_after=1.0), 1, actor=SYNC_MEETING), Retry)

    def test_the_delay_is_near_the_expected_wait(self) -> None:
        rng = random.Random(7)
        low, high = DEFER_SPREAD
        for wait, waited in ((0.9, 0.0), (0.05, 0.25), (0.0, 0.0)):
            expected = max(wait, waited, DEFER_MIN_MS / 1000) * 1000
            for _ in range(50):
                assert expected * low - 1 <= pacing_delay_ms(wait, waited, rng) <= expected * high

    def test_deferrals_run_out(self) -> None:
        assert may_defer(0) and may_defer(retries.MAX_DEFERRALS - 1) and not may_defer(retries.MAX_DEFERRALS)

    def test_outside_a_worker_a_deferral_is_a_plain_retry_after_its_delay(self) -> None:
        with pytest.raises(dramatiq.Retry) as raised:
            enact(Defer("busy", 123), self._wait())
        assert raised.value.delay == 123


class _Ctx:
    settings = Settings(zoom_pacing_hold_seconds=0.25)


class _BusyPacer:
    """Stands in for ``workers.meetings.sync``: its Zoom call finds the pacer busy
    ``busy`` times (as ``zoom.ratelimit`` raises it), then goes."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.runs: list[tuple[dict[str, Any], float | None]] = []

    def sync_meeting(self, ctx: Any, appointment_id: str) -> Any:
        message = CurrentMessage.get_current_message()
        assert message is not None
        self.runs.append((dict(message.options), ratelimit._HOLD_MS.get()))
        if len(self.runs) <= self.busy:
            raise ZoomPacingWait("busy", wait_seconds=0.001, waited_seconds=0.0)
        return SimpleNamespace(notifications=[], resync=False)


def _run_sync(monkeypatch: pytest.MonkeyPatch, pacer: _BusyPacer) -> StubBroker:
    monkeypatch.setattr(retries, "DEFER_MIN_MS", 1)
    monkeypatch.setattr(actors_module, "_sync", pacer)
    broker = StubBroker(middleware=[CurrentMessage(), Retries(min_backoff=1, max_backoff=5)])
    broker.emit_after("process_boot")
    actors = declare_actors(broker, lambda: _Ctx())  # type: ignore[arg-type,return-value]
    actors.sync_meeting.send("north/A-1")
    worker = dramatiq.Worker(broker, worker_timeout=10, worker_threads=1)
    worker.start()
    try:
        broker.join(ACTOR_QUEUES[SYNC_MEETING], fail_fast=False, timeout=20_000)
    finally:
        worker.stop()
    return broker


def test_a_deferred_message_comes_back_without_a_try_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    pacer = _BusyPacer(busy=3)
    broker = _run_sync(monkeypatch, pacer)
    assert [o.get("deferrals", 0) for o, _ in pacer.runs] == [0, 1, 2, 3]
    assert [o.get("retries", 0) for o, _ in pacer.runs] == [0, 0, 0, 0]
    assert [hold for _, hold in pacer.runs] == [250.0] * 4
    assert broker.dead_letters == []


def test_after_the_last_deferral_the_pacer_may_hold_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retries, "MAX_DEFERRALS", 2)
    pacer = _BusyPacer(busy=1_000)
    broker = _run_sync(monkeypatch, pacer)
    # Two deferrals under the bound; then every run may wait in the pacer as before
    # deferral existed, and a pacing wait raised anyway is an ordinary, counted retry.
    holds = [hold for _, hold in pacer.runs]
    assert holds == [250.0, 250.0] + [None] * (ACTOR_MAX_RETRIES[SYNC_MEETING] + 1)
    assert [o.get("retries", 0) for o, _ in pacer.runs][2:] == list(range(ACTOR_MAX_RETRIES[SYNC_MEETING] + 1))
    assert len(broker.dead_letters) == 1
