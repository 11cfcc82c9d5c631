"""End to end on real processes: event → Redis → worker → Zoom simulator → store → SMTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from telemed.samples import DOCTORS, booking, sample_events
from tests.support.pipeline import body_text, mails_to

pytestmark = pytest.mark.integration

# approval_type 0: the patient is registered (TELEMED_PATIENT_JOIN=registrant, the default),
# with Zoom's own registration mails off.
SECURE = {"waiting_room": True, "join_before_host": False, "use_pmi": False, "approval_type": 0,
          "registrants_email_notification": False, "auto_recording": "none"}


def _creates(sim):  # type: ignore[no-untyped-def]
    return [r for r in sim.requests(method="POST") if r["path"].endswith("/meetings")]


def test_bookings_reschedules_and_cancels_end_to_end(pipeline, zoom_sim, smtp) -> None:  # type: ignore[no-untyped-def]
    samples = sample_events(8, seed=11)
    results = pipeline.publish(samples.events)
    assert [r.status for r in results].count("duplicate") == 1
    pipeline.wait_settled()

    appointments = pipeline.appointments()
    meetings = pipeline.meetings()
    sim_meetings = {m["id"]: m for m in zoom_sim.meetings()}

    # At most one Zoom meeting per appointment (a booking cancelled before its sync ran
    # never gets one), each created with the secure settings.
    creates = _creates(zoom_sim)
    assert len(appointments) == 8
    assert len(creates) == len(meetings) == len(sim_meetings)
    active = set(appointments) - samples.expected_cancelled
    assert active <= set(meetings)
    for request in creates:
        body = request["json"]
        for name, value in SECURE.items():
            assert body["settings"][name] == value, name
        assert body["start_time"].endswith("Z") and body["type"] == 2
        assert 0 < len(body["password"]) <= 10

    for appointment_id, appointment in appointments.items():
        meeting = meetings.get(appointment_id)
        if appointment_id in samples.expected_cancelled:
            assert appointment.state == "cancelled"
            assert meeting is None or (meeting.deleted_at and sim_meetings[meeting.zoom_meeting_id]["deleted"])
        else:
            assert meeting is not None
            in_zoom = sim_meetings[meeting.zoom_meeting_id]
            assert appointment.state == "provisioned" and not in_zoom["deleted"]
            expected = samples.expected_start[appointment_id].astimezone(UTC)
            assert in_zoom["meeting"]["start_time"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")

    # Every (appointment, version, role, kind) notice went out exactly once.
    sent = [(m.appointment_id, m.version, m.role, m.kind) for m in pipeline.outbox()]
    assert len(sent) == len(set(sent))
    told = {(m.appointment_id, m.role) for m in pipeline.outbox() if m.status == "sent"}
    for message in pipeline.outbox():
        # A notice overtaken by a cancellation before it went out is superseded, not sent;
        # so is the cancellation to someone who had not been told of the meeting yet.
        overtaken = message.appointment_id in samples.expected_cancelled and (
            message.kind != "cancelled" or (message.appointment_id, message.role) not in told)
        assert message.status == "sent" or (overtaken and message.status == "superseded"), message
    delivered = [m for m in pipeline.outbox() if m.status == "sent"]
    messages = smtp.wait_for(len(delivered))
    assert len(messages) == len(delivered)

    for event in samples.events:
        record = event["appointment"]
        patient_mails = mails_to(messages, record["patient"]["email"])
        if record["id"] in samples.expected_cancelled and (record["id"], "patient") not in told:
            assert patient_mails == []  # never told of a meeting, so nothing to call off
            continue
        assert patient_mails, record["id"]
        for mail in patient_mails:
            text = body_text(mail)
            assert "zak=" not in text and "/s/" not in text
        doctor_mails = [m for m in mails_to(messages, record["doctor"]["email"]) if record["id"] in str(m["Message-ID"])]
        if record["id"] in active:
            invite = [m for m in doctor_mails if ".invite." in str(m["Message-ID"])]
            assert invite and "zak=" in body_text(invite[0])
        for mail in doctor_mails:
            assert record["patient"]["email"] not in str(mail["To"])

    for appointment_id in samples.expected_cancelled & set(meetings):
        cancels = [m for m in messages if f"{appointment_id}.v2." in str(m["Message-ID"])]
        assert {str(m["Message-ID"]).split(".")[2] for m in cancels} == {
            role for a, role in told if a == appointment_id}
        for mail in cancels:
            text = body_text(mail)
            assert "zoom.us/j/" not in text and "zak=" not in text and "pwd=" not in text


def test_reschedule_keeps_the_meeting_and_join_link(pipeline, zoom_sim, smtp) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    pipeline.publish([booking("R-1", 1, start)])
    pipeline.wait_settled()
    before = pipeline.meetings()["R-1"]
    pipeline.publish([booking("R-1", 2, start + timedelta(hours=2), type="appointment.rescheduled")])
    pipeline.wait_settled()
    after = pipeline.meetings()["R-1"]
    assert after.zoom_meeting_id == before.zoom_meeting_id
    assert after.join_url == before.join_url
    # The patient's registration and their own link survive the reschedule too.
    assert after.registrant_id == before.registrant_id and after.registrant_join_url == before.registrant_join_url
    assert after.start_time == start + timedelta(hours=2)
    assert len(_creates(zoom_sim)) == 1
    patches = zoom_sim.requests(method="PATCH")
    assert len(patches) == 1 and patches[0]["json"]["start_time"].endswith("Z")
    kinds = sorted((m.role, m.kind) for m in pipeline.outbox() if m.version == 2)
    assert kinds == [("doctor", "updated"), ("patient", "updated")]
    updated_mail = [m for m in smtp.wait_for(4) if ".v2.patient.updated." in str(m["Message-ID"])]
    assert before.registrant_join_url and before.registrant_join_url in body_text(updated_mail[0])


def test_out_of_order_and_duplicate_events_change_nothing(pipeline, zoom_sim) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    v1 = booking("O-1", 1, start)
    v2 = booking("O-1", 2, start + timedelta(hours=1), type="appointment.rescheduled")
    assert [r.status for r in pipeline.publish([v2])] == ["accepted"]
    pipeline.wait_settled()
    # The older version arrives after the newer one was applied, then a repeat of v2.
    assert [r.status for r in pipeline.publish([v1, v2])] == ["accepted", "duplicate"]
    pipeline.wait_settled()
    with pipeline.database.session() as s:
        from telemed.store.inbox import get_event

        late = get_event(s, v1["event_id"])
        assert late is not None and late.status == "stale"
    appointment = pipeline.appointments()["O-1"]
    assert appointment.version == 2 and appointment.state == "provisioned"
    assert len(_creates(zoom_sim)) == 1
    assert pipeline.meetings()["O-1"].start_time == start + timedelta(hours=1)
    # The patient was told once, with the newest time, under version 2.
    assert sorted((m.version, m.role, m.kind) for m in pipeline.outbox()) == [
        (2, "doctor", "invite"), (2, "patient", "invite")]


def test_a_cancelled_appointment_is_never_provisioned_by_a_stale_booking(pipeline, zoom_sim) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    cancel = booking("C-1", 2, start, type="appointment.cancelled")
    late_booking = booking("C-1", 1, start)
    pipeline.publish([cancel])
    pipeline.wait_settled()
    pipeline.publish([late_booking])
    pipeline.wait_settled()
    assert pipeline.appointments()["C-1"].state == "cancelled"
    assert _creates(zoom_sim) == []
    assert pipeline.outbox() == []  # nobody was told of a meeting, so no cancel notice either


def test_publish_command_reads_json_lines(pipeline, zoom_sim) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) + timedelta(days=4)
    good = booking("L-1", 1, start, doctor=DOCTORS[1])
    bad = dict(good, event_id="bad id")
    lines = (json.dumps(good) + "\n" + json.dumps(bad) + "\n").encode()
    result = pipeline.run_cli("publish", "-", input=lines)
    out = result.stdout.decode()
    assert result.returncode == 1, out + result.stderr.decode()
    assert "line 1: evt-L-1-v1 accepted" in out
    assert "line 2: rejected" in out and "event_id:" in out
    assert "Traceback" not in out + result.stderr.decode()
    pipeline.wait_settled()
    assert len(_creates(zoom_sim)) == 1
