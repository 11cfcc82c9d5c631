"""The one retry decision (``workers.policy.retries.decide``) as a plain function, branch by
branch, and the error tree it reads (``foundation/errors.py``)."""

from __future__ import annotations

import random

import dramatiq
import pytest
import redis
import sqlalchemy.exc

from telemed.events.errors import InvalidEvent
from telemed.foundation.errors import PermanentError, RetryLater, TelemedError, TransientError
from telemed.foundation.signatures import SignatureError
from telemed.foundation.tenancy import UnknownClinic
from telemed.workers.notifier.errors import (
    InvalidMessage,
    MeetingGone,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from telemed.workers.notifier.mime import HeaderValueError
from telemed.workers.notifier.render import RenderError
from telemed.workers.notifier.webhook import WebhookGone
from telemed.workers.policy.retries import (
    ACTOR_MAX_RETRIES,
    OUTBOX_MAX_ATTEMPTS,
    UNEXPECTED_MAX_ATTEMPTS,
    GiveUp,
    PermanentFailure,
    Retry,
    decide,
    decide_failed_give_up,
    enact,
)
from telemed.workers.queue.work_queue import (
    DELIVER_NOTIFICATION,
    PROCESS_EVENT,
    PROCESS_ZOOM_WEBHOOK,
    SYNC_MEETING,
)
from telemed.zoom.errors import (
    ZoomAppRefused,
    ZoomAuthError,
    ZoomError,
    ZoomGrantRevoked,
    ZoomNotFound,
    ZoomPermanentError,
    ZoomRateLimited,
    ZoomTransientError,
)

ACTORS = [PROCESS_EVENT, SYNC_MEETING, DELIVER_NOTIFICATION, PROCESS_ZOOM_WEBHOOK]
CHANNELS = sorted(OUTBOX_MAX_ATTEMPTS)


def _data_error() -> sqlalchemy.exc.DataError:
    return sqlalchemy.exc.DataError("INSERT ...", {}, Exception("integer out of range\nDETAIL: 99999999999"))


class TestTheTree:
    @pytest.mark.parametrize("error", [ZoomTransientError, ZoomRateLimited, TransientDeliveryError, MeetingGone])
    def test_transient_branch(self, error: type[Exception]) -> None:
        assert issubclass(error, TransientError) and not issubclass(error, PermanentError)

    @pytest.mark.parametrize("error", [ZoomPermanentError, ZoomNotFound, ZoomAuthError, ZoomGrantRevoked,
                                       PermanentDeliveryError, WebhookGone, PermanentFailure, InvalidMessage,
                                       RenderError, HeaderValueError, InvalidEvent, SignatureError])
    def test_permanent_branch(self, error: type[Exception]) -> None:
        assert issubclass(error, PermanentError) and not issubclass(error, TransientError)

    def test_a_bare_zoom_error_is_neither(self) -> None:
        assert issubclass(ZoomError, TelemedError)
        assert not issubclass(ZoomError, (TransientError, PermanentError))

    @pytest.mark.parametrize("error", [InvalidEvent, SignatureError, InvalidMessage, RenderError, HeaderValueError])
    def test_client_and_data_errors_stay_value_errors(self, error: type[Exception]) -> None:
        assert issubclass(error, ValueError)


class TestPermanent:
    @pytest.mark.parametrize("actor", ACTORS)
    @pytest.mark.parametrize(("error", "reason"), [
        (PermanentFailure("no such appointment"), "no such appointment"),
        (ZoomPermanentError("bad", status=400), "ZoomPermanentError: bad (HTTP 400)"),
        (ZoomNotFound("gone", status=404), "ZoomNotFound: gone (HTTP 404)"),
        (ZoomAuthError("no", status=401, code=124), "ZoomAuthError: no (HTTP 401, code 124)"),
        (ZoomGrantRevoked("dead"), "ZoomGrantRevoked: dead"),
        (ZoomAppRefused("Invalid client_id or client_secret", status=401),
         "ZoomAppRefused: Invalid client_id or client_secret (HTTP 401)"),
        (UnknownClinic("clinic-x"), "clinic clinic-x is not known (deleted?)"),
        (PermanentDeliveryError("SMTP server refused (550)", smtp_code=550), "SMTP server refused (550)"),
    ])
    def test_gives_up_at_once(self, actor: str, error: Exception, reason: str) -> None:
        assert decide(error, 1, actor=actor) == GiveUp(reason)

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_a_delivery_refusal_gives_up_at_once(self, channel: str) -> None:
        error = PermanentDeliveryError("SMTP server refused (550)", smtp_code=550)
        assert decide(error, 1, channel=channel) == GiveUp("SMTP server refused (550)")

    def test_stored_data_that_makes_no_valid_message(self) -> None:
        error = InvalidMessage("start_utc: must be a timezone-aware datetime\nmore")
        assert decide(error, 1, channel="mail") == GiveUp(
            "could not build the message (start_utc: must be a timezone-aware datetime)")

    def test_a_value_the_database_refuses_names_the_problem_not_the_value(self) -> None:
        decision = decide(_data_error(), 1, actor=PROCESS_EVENT)
        assert decision == GiveUp("the database refused a value: integer out of range")


class TestTransient:
    @pytest.mark.parametrize("actor", ACTORS)
    @pytest.mark.parametrize("error", [
        ZoomTransientError("bad gateway", status=502),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        redis.ConnectionError("refused"),
    ])
    def test_backs_off_until_the_actors_limit(self, actor: str, error: Exception) -> None:
        limit = ACTOR_MAX_RETRIES[actor] + 1
        for attempt in range(1, limit):
            decision = decide(error, attempt, actor=actor)
            assert isinstance(decision, Retry) and decision.delay_ms is None  # the broker's backoff
        given_up = decide(error, limit, actor=actor)
        assert isinstance(given_up, GiveUp) and given_up.reason.startswith(f"gave up after {limit} attempts: ")

    def test_the_actors_limits_are_the_ones_before_the_decision(self) -> None:
        assert ACTOR_MAX_RETRIES == {PROCESS_EVENT: 10, SYNC_MEETING: 12, PROCESS_ZOOM_WEBHOOK: 10,
                                     DELIVER_NOTIFICATION: 8, "notification_failed": 3}

    @pytest.mark.parametrize("channel", CHANNELS)
    def test_an_outbox_row_backs_off_by_its_own_count(self, channel: str) -> None:
        error = TransientDeliveryError("SMTP timeout (data)")
        delays = []
        for attempt in range(1, OUTBOX_MAX_ATTEMPTS[channel]):
            decision = decide(error, attempt, channel=channel, base_seconds=15, rng=random.Random(attempt))
            assert isinstance(decision, Retry) and decision.delay_ms is not None
            delays.append(decision.delay_ms)
        assert 12_000 <= delays[0] <= 18_000 and delays[-1] > delays[0] * 20
        assert decide(error, OUTBOX_MAX_ATTEMPTS[channel], channel=channel) == GiveUp(
            "gave up after repeated failures: SMTP timeout (data)")

    def test_the_outbox_gives_up_before_dramatiq_would(self) -> None:
        assert max(OUTBOX_MAX_ATTEMPTS.values()) <= ACTOR_MAX_RETRIES[DELIVER_NOTIFICATION] + 1

    def test_a_meeting_gone_while_building_a_notice_is_retried(self) -> None:
        assert isinstance(decide(MeetingGone("the meeting is no longer in Zoom"), 1, channel="mail"), Retry)

    def test_rate_limits_retry_when_zoom_says(self) -> None:
        decision = decide(ZoomRateLimited("slow", retry_after=3.0), 1, actor=SYNC_MEETING, rng=random.Random(1))
        assert isinstance(decision, Retry) and 3000 <= decision.delay_ms <= 3250  # type: ignore[operator]
        daily = ZoomRateLimited("daily", status=300, retry_after=7200.0, daily=True)
        decision = decide(daily, 1, actor=SYNC_MEETING)
        assert isinstance(decision, Retry) and 7_200_000 <= decision.delay_ms <= 7_260_000  # type: ignore[operator]
        assert isinstance(decide(daily, ACTOR_MAX_RETRIES[SYNC_MEETING] + 1, actor=SYNC_MEETING), GiveUp)

    def test_a_busy_lock_retries_after_its_wait(self) -> None:
        busy = RetryLater("another worker is syncing this appointment", delay_ms=2_000)
        assert decide(busy, 1, actor=SYNC_MEETING) == Retry(
            "RetryLater: another worker is syncing this appointment", 2_000)


BUGS = (TypeError("'NoneType' object is not subscriptable"), ValueError("invalid literal for int()"),
        KeyError("start_time"), ZoomError("unexpected error talking to Zoom (RuntimeError)"))


class TestUnexpected:
    """A bug is a bug wherever it is raised: a few tries, then given up, naming its type."""

    @pytest.mark.parametrize("error", BUGS, ids=lambda e: type(e).__name__)
    @pytest.mark.parametrize("actor", ACTORS)
    def test_a_few_tries_then_given_up(self, actor: str, error: Exception) -> None:
        for attempt in range(1, UNEXPECTED_MAX_ATTEMPTS):
            assert decide(error, attempt, actor=actor) == Retry(f"{type(error).__name__}: {error}")
        given_up = decide(error, UNEXPECTED_MAX_ATTEMPTS, actor=actor)
        assert given_up == GiveUp(
            f"gave up after {UNEXPECTED_MAX_ATTEMPTS} attempts: unexpected {type(error).__name__}: {error}")

    def test_value_error_and_type_error_are_treated_alike(self) -> None:
        def outcomes(error: Exception, actor: str | None, channel: str | None) -> list[str]:
            return [type(decide(error, attempt, actor=actor, channel=channel)).__name__ for attempt in range(1, 15)]

        for actor, channel in [(actor, None) for actor in ACTORS] + [(None, channel) for channel in CHANNELS]:
            assert outcomes(ValueError("x"), actor, channel) == outcomes(TypeError("x"), actor, channel)
            assert outcomes(ValueError("x"), actor, channel)[:UNEXPECTED_MAX_ATTEMPTS] == ["Retry", "Retry", "GiveUp"]

    def test_only_the_first_line_of_a_bugs_text(self) -> None:
        decision = decide(ValueError("bad value\npatient@example.org"), UNEXPECTED_MAX_ATTEMPTS, actor=SYNC_MEETING)
        assert isinstance(decision, GiveUp) and "patient@" not in decision.reason


class TestAFailedGiveUp:
    """The give-up step (a notification's admin alert) failed in turn: decided like any failure."""

    def test_the_same_refusal_gives_up_with_the_one_reason(self) -> None:
        # deliver_notification(2**31 + 1) on PostgreSQL: the relay's read and the give-up's
        # both hit "integer out of range". Undecided, the second one was retried for minutes.
        gave_up = decide(_data_error(), 1, actor=DELIVER_NOTIFICATION)
        assert isinstance(gave_up, GiveUp)
        assert decide_failed_give_up(gave_up, _data_error(), 1, actor=DELIVER_NOTIFICATION) == gave_up

    def test_another_permanent_failure_keeps_both_reasons(self) -> None:
        gave_up = GiveUp("SMTP server refused (550)")
        assert decide_failed_give_up(gave_up, _data_error(), 1, actor=DELIVER_NOTIFICATION) == GiveUp(
            "SMTP server refused (550); giving up failed too: the database refused a value: integer out of range")

    def test_a_blip_is_retried_so_the_alert_is_not_lost(self) -> None:
        blip = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        gave_up = GiveUp("no such outbox message")
        assert decide_failed_give_up(gave_up, blip, 1, actor=DELIVER_NOTIFICATION) == decide(
            blip, 1, actor=DELIVER_NOTIFICATION)
        assert isinstance(decide_failed_give_up(gave_up, blip, 1, actor=DELIVER_NOTIFICATION), Retry)

    def test_a_blip_to_the_last_try_still_gives_up(self) -> None:
        blip = redis.ConnectionError("refused")
        limit = ACTOR_MAX_RETRIES[DELIVER_NOTIFICATION] + 1
        decision = decide_failed_give_up(GiveUp("no such outbox message"), blip, limit, actor=DELIVER_NOTIFICATION)
        assert decision == GiveUp(f"no such outbox message; giving up failed too: gave up after {limit} "
                                  "attempts: ConnectionError: refused")

    def test_a_bug_in_the_give_up_step_is_tried_a_few_times(self) -> None:
        bug = KeyError("args")
        decisions = [decide_failed_give_up(GiveUp("x"), bug, attempt, actor=DELIVER_NOTIFICATION)
                     for attempt in range(1, UNEXPECTED_MAX_ATTEMPTS + 1)]
        assert [type(d).__name__ for d in decisions] == ["Retry"] * (UNEXPECTED_MAX_ATTEMPTS - 1) + ["GiveUp"]


class TestEnact:
    def test_a_give_up_dead_letters_with_the_reason(self) -> None:
        bug = TypeError("boom")
        with pytest.raises(PermanentFailure, match="unexpected TypeError") as caught:
            enact(decide(bug, UNEXPECTED_MAX_ATTEMPTS, actor=SYNC_MEETING), bug)
        assert caught.value.__cause__ is bug  # the dead letter keeps the bug's traceback

    def test_a_permanent_failure_is_raised_as_it_is(self) -> None:
        failure = PermanentFailure("no such appointment")
        with pytest.raises(PermanentFailure) as caught:
            enact(decide(failure, 1, actor=SYNC_MEETING), failure)
        assert caught.value is failure

    def test_the_brokers_backoff_sees_the_real_error(self) -> None:
        error = ZoomTransientError("bad gateway", status=502)
        with pytest.raises(ZoomTransientError) as caught:
            enact(decide(error, 1, actor=SYNC_MEETING), error)
        assert caught.value is error

    def test_a_known_wait_is_a_dramatiq_retry_with_that_delay(self) -> None:
        busy = RetryLater("busy", delay_ms=2_000)
        with pytest.raises(dramatiq.Retry) as caught:
            enact(decide(busy, 1, actor=SYNC_MEETING), busy)
        assert caught.value.delay == 2_000
