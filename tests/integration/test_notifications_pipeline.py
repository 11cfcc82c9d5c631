"""Notifications end to end on real processes: mails with calendar invitations over a real
SMTP server, signed webhooks to a real receiver, start links opened on the real web app,
channel failures and recoveries; and a canary scan of everything that was sent."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from dramatiq.message import Message

from telemed.samples import booking
from telemed.store import notifications, outbox
from tests.support import notify_run
from tests.support.mail_scan import calendars, everything
from tests.support.notify_run import ADMIN, START_LINK, Run, by_message_id, canary_scan, soon, verified
from tests.support.pipeline import mails_to

pytestmark = pytest.mark.integration


@pytest.fixture
def run_factory(backend, zoom_sim, smtp, tmp_path, redis_namespace):  # type: ignore[no-untyped-def]
    yield from notify_run.run_factory(backend, zoom_sim, smtp, tmp_path, redis_namespace)


def test_book_move_cancel_with_calendars_webhooks_and_start_links(run_factory) -> None:  # type: ignore[no-untyped-def]
    run: Run = run_factory()
    start = soon()
    run.publish("N-1", 1, start)
    run.publish("N-2", 1, start + timedelta(hours=1), doctor=("D-2", "Dr. Alan Turing"))
    run.pipeline.wait_settled()
    run.publish("N-1", 2, start + timedelta(hours=2), type="appointment.rescheduled")
    run.pipeline.wait_settled()

    # The doctor's link from the update mail: a 302 to a start_url minted at click time.
    messages = run.smtp.wait_for(6)
    [doctor_update] = by_message_id(messages, "N-1.v2.doctor.updated")
    [signed] = set(START_LINK.findall(everything(doctor_update)))
    assert signed.startswith(str(run.web_url))
    response = httpx.get(signed, follow_redirects=False)
    assert response.status_code == 302 and "zak=" in response.headers["location"]
    with run.pipeline.database.session() as s:
        assert [(a.appointment_id, a.via) for a in notifications.disclosures(s)] == [("N-1", "start_link")]

    run.publish("N-1", 3, start + timedelta(hours=2), type="appointment.cancelled")
    run.pipeline.wait_settled()
    assert httpx.get(signed, follow_redirects=False).status_code == 410  # cancelled: no redirect

    # Calendars: the same UID throughout, SEQUENCE = version, REQUEST, REQUEST, CANCEL.
    messages = run.smtp.wait_for(8)
    patient_email = run.patients["N-1"][1]
    for recipient in (patient_email, "d-1@clinic.example"):
        mails = sorted((m for m in mails_to(messages, recipient) if "N-1." in str(m["Message-ID"])),
                       key=lambda m: str(m["Message-ID"]))
        seen = []
        for mail in mails:
            [cal] = calendars(mail)
            [event] = cal.walk("VEVENT")
            seen.append((str(cal["METHOD"]), str(event["UID"]), int(str(event["SEQUENCE"])), str(event["STATUS"])))
        uid = "telemed-N-1@telemed.invalid"
        assert seen == [("REQUEST", uid, 1, "CONFIRMED"), ("REQUEST", uid, 2, "CONFIRMED"),
                        ("CANCEL", uid, 3, "CANCELLED")], recipient
        [moved] = [e for c in calendars(mails[1]) for e in c.walk("VEVENT")]
        assert moved.decoded("DTSTART") == start + timedelta(hours=2)

    # Webhooks: signed like the ingress, one per change, join link only while it is useful.
    hooks = run.hooks.wait_for(4)
    payloads = {p["delivery_id"]: p for p in map(verified, hooks)}
    assert set(payloads) == {"N-1.v1.invite", "N-1.v2.updated", "N-1.v3.cancelled", "N-2.v1.invite"}
    assert payloads["N-1.v2.updated"]["appointment"]["status"] == "scheduled"
    assert "zoom.us/j/" in payloads["N-1.v2.updated"]["meeting"]["join_url"]
    assert payloads["N-1.v3.cancelled"]["appointment"]["status"] == "cancelled"
    assert payloads["N-1.v3.cancelled"]["meeting"] is None
    assert {h.headers["X-Telemed-Delivery"] for h in hooks} == set(payloads)
    assert all(m.status == "sent" for m in run.outbox(channel="webhook"))

    canary_scan(run, signed_links=True)


def test_without_a_public_url_the_doctor_gets_zooms_start_url_audited(run_factory) -> None:  # type: ignore[no-untyped-def]
    run: Run = run_factory(public_url=False, webhook=False)
    run.publish("Z-1", 1, soon())
    run.pipeline.wait_settled()
    messages = run.smtp.wait_for(2)
    [doctor_invite] = by_message_id(messages, "Z-1.v1.doctor.invite")
    assert "zak=" in everything(doctor_invite).split("BEGIN:VCALENDAR")[0]
    with run.pipeline.database.session() as s:
        assert [(a.appointment_id, a.principal, a.via) for a in notifications.disclosures(s)] == [
            ("Z-1", "doctor:D-1", "mail")]
    assert run.outbox(channel="webhook") == []  # no webhook configured, none owed
    canary_scan(run, signed_links=False)


def test_smtp_that_fails_then_recovers_and_a_permanent_failure_becomes_an_alert(run_factory, smtp) -> None:  # type: ignore[no-untyped-def]
    run: Run = run_factory(webhook=False)
    start = soon()
    rejected = booking("F-1", 1, start, patient="Canaryf1patient Smith")["appointment"]["patient"]["email"]
    smtp.reject_recipient(rejected, 550)
    smtp.fail_next(3, 451, "data")
    run.publish("S-1", 1, start)
    run.pipeline.wait_settled()
    assert len(by_message_id(run.smtp.wait_for(2), "S-1.v1.")) == 2
    rows = run.outbox(appointment_id="S-1")
    assert all(m.status == "sent" for m in rows)
    assert sum(m.attempts for m in rows) == 3  # each 451 counted in the outbox, then recovered
    assert not mails_to(run.smtp.messages, ADMIN)  # recovered: nobody is alarmed

    run.publish("F-1", 1, start + timedelta(hours=1))
    run.pipeline.wait_settled()
    [failed] = run.outbox(appointment_id="F-1", role="patient")
    assert failed.status == "failed" and "550" in (failed.last_error or "")
    [alert_mail] = mails_to(run.smtp.wait_for(4), ADMIN)
    assert "F-1" in str(alert_mail["Subject"]) and "patient" in str(alert_mail["Subject"])
    canary_scan(run, signed_links=True)


def test_webhook_5xx_then_recovery(run_factory) -> None:  # type: ignore[no-untyped-def]
    run: Run = run_factory()
    run.hooks.answer_next(503, 500)
    run.publish("W-1", 1, soon())
    run.pipeline.wait_settled()
    assert [h.status for h in run.hooks.received] == [503, 500, 204]
    bodies = [verified(h) for h in run.hooks.received]
    assert {b["delivery_id"] for b in bodies} == {"W-1.v1.invite"}
    assert len({h.headers["X-Telemed-Signature"] for h in run.hooks.received}) == 3  # signed afresh
    [row] = run.outbox(channel="webhook")
    assert row.status == "sent" and row.attempts == 2
    assert not mails_to(run.smtp.messages, ADMIN)

    # The ingress side queues ``started`` / ``ended`` rows on the webhook channel from
    # Zoom's notifications; the relay delivers them like any other.
    with run.pipeline.database.session() as s:
        ids = []
        for kind in ("started", "ended"):
            message = outbox.add_message(s, appointment_id="W-1", version=1, role="booking", kind=kind,
                                         channel="webhook")
            assert message is not None
            s.flush()
            ids.append(message.id)
    for outbox_id in ids:
        run.pipeline.broker.enqueue(Message(queue_name="notifications", actor_name="deliver_notification",
                                            args=(outbox_id,), kwargs={}, options={}))
    run.pipeline.wait_settled()
    payloads = {p["event"]: p for p in map(verified, run.hooks.wait_for(3))}
    assert payloads["started"]["appointment"]["status"] == "started"
    assert "zoom.us/j/" in payloads["started"]["meeting"]["join_url"]
    assert payloads["ended"]["appointment"]["status"] == "ended" and payloads["ended"]["meeting"] is None


def test_webhook_410_disables_it_with_one_alert(run_factory) -> None:  # type: ignore[no-untyped-def]
    run: Run = run_factory()
    run.hooks.default = 410
    start = soon()
    run.publish("G-1", 1, start)
    run.publish("G-2", 1, start + timedelta(hours=1))
    run.pipeline.wait_settled()
    calls = len(run.hooks.received)
    assert 1 <= calls <= 2  # both may have been in flight; nothing after the 410 was known
    run.publish("G-3", 1, start + timedelta(hours=2))
    run.pipeline.wait_settled()
    assert len(run.hooks.received) == calls  # disabled: not even tried
    webhook_rows = {m.appointment_id: m for m in run.outbox(channel="webhook")}
    assert webhook_rows["G-3"].status == "skipped"
    assert {webhook_rows[a].status for a in ("G-1", "G-2")} <= {"failed", "skipped"}
    alerts = mails_to(run.smtp.messages, ADMIN)
    assert len(alerts) == 1 and "410" in str(alerts[0]["Subject"])
    with run.pipeline.database.session() as s:
        assert [a.kind for a in notifications.alerts(s)] == ["webhook_disabled"]
    enabled = run.pipeline.run_cli("webhook", "enable")
    assert enabled.returncode == 0 and b"webhook enabled" in enabled.stdout
    run.hooks.default = 204
    run.publish("G-3", 2, start + timedelta(hours=3), type="appointment.rescheduled")
    run.pipeline.wait_settled()
    assert verified(run.hooks.wait_for(1)[-1])["delivery_id"] == "G-3.v2.updated"
    canary_scan(run, signed_links=True)
