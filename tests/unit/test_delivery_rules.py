"""The relay's rules as plain functions: supersession, webhook payloads and answers,
per-channel retry delays."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from telemed.workers.delivery.snapshot import superseded_reason
from telemed.workers.delivery.webhook import webhook_payload
from telemed.workers.notifier.errors import PermanentDeliveryError, TransientDeliveryError
from telemed.workers.notifier.webhook import WebhookChannel, WebhookGone, classify_status, encode_payload
from telemed.workers.policy.retries import OUTBOX_MAX_ATTEMPTS, outbox_retry_delay
from tests.support.snapshots import JOIN, START, snapshot

NOW = START - timedelta(hours=3)


def test_live_notices_for_a_cancelled_or_vanished_meeting_are_superseded() -> None:
    assert superseded_reason(snapshot(kind="invite"), NOW) is None
    assert "cancelled" in (superseded_reason(snapshot(kind="updated", desired="cancelled"), NOW) or "")
    assert "no longer" in (superseded_reason(snapshot(kind="invite", zoom_meeting_id=None), NOW) or "")
    assert superseded_reason(snapshot(kind="cancelled", desired="cancelled", zoom_meeting_id=None), NOW) is None


def test_reminders_are_superseded_by_a_move_a_cancel_or_the_start() -> None:
    assert superseded_reason(snapshot(kind="reminder-15m"), NOW) is None
    assert "moved" in (superseded_reason(snapshot(kind="reminder-15m", current_version=2), NOW) or "")
    assert "cancelled" in (superseded_reason(snapshot(kind="reminder-24h", desired="cancelled"), NOW) or "")
    assert "started" in (superseded_reason(snapshot(kind="reminder-15m"), START) or "")


def test_status_callbacks_are_never_superseded() -> None:
    for kind in ("started", "ended"):
        assert superseded_reason(snapshot(kind=kind, channel="webhook", role="booking"), NOW) is None


def test_webhook_payload_has_status_and_join_link_and_nothing_personal() -> None:
    payload = webhook_payload(snapshot(kind="invite", channel="webhook", role="booking"), NOW)
    assert payload["event"] == "invite" and payload["delivery_id"] == "A-1001.v1.invite"
    assert payload["appointment"]["status"] == "scheduled"
    assert payload["appointment"]["start_time"] == "2026-12-03T08:30:00Z"
    assert payload["meeting"] == {"zoom_meeting_id": 85012345678, "join_url": JOIN}
    text = json.dumps(payload)
    for personal in ("Grace", "grace@example.org", "ada@clinic.example", "Xy12ab"):
        assert personal not in text


@pytest.mark.parametrize("kind,status", [("cancelled", "cancelled"), ("ended", "ended"), ("completed", "ended")])
def test_no_join_link_once_it_is_of_no_use(kind: str, status: str) -> None:
    desired = "cancelled" if kind == "cancelled" else "scheduled"
    payload = webhook_payload(snapshot(kind=kind, desired=desired, channel="webhook", role="booking"), NOW)
    assert payload["appointment"]["status"] == status and payload["meeting"] is None


def test_a_started_callback_after_a_cancel_says_cancelled() -> None:
    payload = webhook_payload(snapshot(kind="started", desired="cancelled"), NOW)
    assert payload["appointment"]["status"] == "cancelled" and payload["meeting"] is None


def test_a_host_link_can_never_be_encoded_into_a_callback() -> None:
    with pytest.raises(PermanentDeliveryError):
        encode_payload({"meeting": {"join_url": "https://zoom.us/s/1?zak=abc"}})


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status: int) -> None:
    assert classify_status(status) == status


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 425, 429])
def test_server_trouble_is_transient(status: int) -> None:
    with pytest.raises(TransientDeliveryError):
        classify_status(status)


def test_410_means_gone() -> None:
    with pytest.raises(WebhookGone):
        classify_status(410)


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 422])
def test_other_answers_are_permanent(status: int) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        classify_status(status)
    assert not isinstance(caught.value, WebhookGone)


def test_webhook_needs_tls_and_a_secret() -> None:
    with pytest.raises(ValueError, match="https"):
        WebhookChannel("http://booking.example/hooks", "s3cret", 5)
    with pytest.raises(ValueError, match="TELEMED_WEBHOOK_SECRET"):
        WebhookChannel("https://booking.example/hooks", "", 5)
    assert "booking.example" not in repr(WebhookChannel("https://booking.example/hooks?token=x", "s", 5))


def test_retry_delays_grow_per_channel_then_give_up() -> None:
    rng = random.Random(1)
    delays = [outbox_retry_delay("webhook", n, 15, rng) for n in range(1, OUTBOX_MAX_ATTEMPTS["webhook"])]
    assert all(d is not None for d in delays)
    assert 12 <= delays[0] <= 18 and delays[-1] > delays[0] * 20  # type: ignore[operator]
    assert outbox_retry_delay("webhook", OUTBOX_MAX_ATTEMPTS["webhook"], 15) is None
    assert outbox_retry_delay("mail", OUTBOX_MAX_ATTEMPTS["mail"], 15) is None
    assert outbox_retry_delay("mail", 30, 15) is None
    assert (outbox_retry_delay("mail", 7, 10_000) or 0) <= 3600 * 1.2  # capped

