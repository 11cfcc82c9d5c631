"""The relay called in-process on a real store and Redis, for the paths that need no
worker: alerts with and without an admin address, webhooks that are not configured,
rows that cannot be delivered."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from telemed.settings import load_settings
from telemed.store import notifications, outbox
from telemed.workers.context import WorkerContext
from telemed.workers.delivery.relay import deliver_notification
from telemed.workers.policy.retries import PermanentFailure
from tests.support.contexts import cipher_database, worker_context

pytestmark = pytest.mark.integration


@pytest.fixture
def make_ctx(database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path) -> Iterator[Any]:
    made: list[WorkerContext] = []
    key = Fernet.generate_key().decode()
    database = cipher_database(database_url, [key])

    def make(**overrides: Any) -> WorkerContext:
        settings = load_settings(redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url,
                                 secret_keys=key, data_dir=tmp_path, mail_dir=tmp_path / "mail", **overrides)
        ctx = worker_context(settings, database)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.redis.close()
    database.dispose()


def _alert(ctx: WorkerContext) -> int:
    with ctx.database.session() as s:
        _, outbox_id = notifications.queue_alert(
            s, "notification_failed", "Notification failed: mail to patient (invite) for appointment A-1",
            "Reason: SMTP server refused (recipient): 550 5.1.1", "A-1")
    return outbox_id


def _status(ctx: WorkerContext, outbox_id: int) -> tuple[str, str | None]:
    with ctx.database.session() as s:
        row = outbox.get_message(s, outbox_id)
        assert row is not None
        return row.status, row.last_error


def test_without_an_admin_address_an_alert_is_stored_and_skipped(make_ctx: Any, tmp_path: Path) -> None:
    ctx = make_ctx()
    outbox_id = _alert(ctx)
    assert deliver_notification(ctx, outbox_id).status == "skipped"
    assert _status(ctx, outbox_id) == ("skipped", "TELEMED_ADMIN_EMAIL is not set")
    assert not (tmp_path / "mail").exists()


def test_an_alert_is_mailed_with_the_admin_template(make_ctx: Any, tmp_path: Path) -> None:
    ctx = make_ctx(admin_email="ops@clinic.example")
    outbox_id = _alert(ctx)
    assert deliver_notification(ctx, outbox_id).status == "sent"
    assert deliver_notification(ctx, outbox_id).status == "done"  # once
    [path] = list((tmp_path / "mail").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert str(message["To"]) == "ops@clinic.example"
    assert str(message["Subject"]).strip().startswith("[telemed] Notification failed")
    assert "550 5.1.1" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert _status(ctx, outbox_id)[0] == "sent"


def test_a_webhook_row_without_a_webhook_is_skipped(make_ctx: Any) -> None:
    ctx = make_ctx()
    from telemed.store import appointments
    from tests.support.seeded_web import seed_appointment

    with ctx.database.session() as s:
        appointments.upsert_doctor(s, id="D-1", name="Dr. One", email="one@clinic.example",
                                   zoom_user="one@clinic.example")
        appointments.save(s, seed_appointment("default", "A-1", "D-1", None, start_time=None))
        message = outbox.add_message(s, appointment_id="A-1", version=1, role="booking", kind="started",
                                     channel="webhook")
        s.flush()
        assert message is not None and message.id is not None
        outbox_id = message.id
    assert deliver_notification(ctx, outbox_id).status == "skipped"
    assert _status(ctx, outbox_id) == ("skipped", "TELEMED_WEBHOOK_URL is not set")


def test_a_row_for_an_unknown_appointment_fails_permanently(make_ctx: Any) -> None:
    ctx = make_ctx()
    with ctx.database.session() as s:
        message = outbox.add_message(s, appointment_id="nope", version=1, role="patient", kind="invite")
        s.flush()
        assert message is not None and message.id is not None
        outbox_id = message.id
    with pytest.raises(PermanentFailure):
        deliver_notification(ctx, outbox_id)
    with pytest.raises(PermanentFailure):
        deliver_notification(ctx, 987654)


def test_a_bug_while_sending_is_left_to_the_retry_decision(make_ctx: Any) -> None:
    # It used to fail the row at once and alert an admin for any ValueError (a bug
    # included) while a TypeError was retried a dozen times; now the actor asks the one
    # decision (workers/policy/retries.py), which treats every bug alike.
    from telemed.workers.delivery.relay import _attempt
    from telemed.workers.notifier.errors import InvalidMessage

    ctx = make_ctx()
    outbox_id = _alert(ctx)

    def buggy() -> str:
        raise ValueError("invalid literal for int() with base 10: 'x'")

    with pytest.raises(ValueError, match="invalid literal"):
        _attempt(ctx, outbox_id, "mail", "admin", "alert", buggy)
    assert _status(ctx, outbox_id) == ("pending", None)

    def no_valid_message() -> str:  # stored data the notifier's rules refuse: permanent
        raise InvalidMessage("start_utc: must be a timezone-aware datetime")

    assert _attempt(ctx, outbox_id, "mail", "admin", "alert", no_valid_message).status == "failed"
    assert _status(ctx, outbox_id) == (
        "failed", "could not build the message (start_utc: must be a timezone-aware datetime)")
