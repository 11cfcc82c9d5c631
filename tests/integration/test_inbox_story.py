"""Each inbox tells one story, newest last: reschedules racing the first invitations on a
real worker (several threads), the Zoom simulator over HTTP and a real SMTP server.

Per recipient (an appointment's patient or doctor) the mails, in the order the server
accepted them, must start with an invitation, never go back in version (SEQUENCE), and
end with the current time and join link, or the cancellation. Superseded rows are
recorded as such, not as failures, and nobody alerts the administrator.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest

from telemed.store.registrations import patient_join_url
from tests.support import notify_run
from tests.support.mail_scan import calendars
from tests.support.notify_run import ADMIN, Run, soon
from tests.support.pipeline import mails_to

pytestmark = pytest.mark.integration


@pytest.fixture
def run_factory(backend, zoom_sim, smtp, tmp_path, redis_namespace):  # type: ignore[no-untyped-def]
    yield from notify_run.run_factory(backend, zoom_sim, smtp, tmp_path, redis_namespace)


def notice_kind(mail: EmailMessage) -> str:
    subject = str(mail["Subject"])
    for prefix, kind in (("Moved:", "updated"), ("Changed:", "updated"), ("Cancelled:", "cancelled"),
                         ("Reminder:", "reminder")):
        if subject.startswith(prefix):
            return kind
    return "invite"


def stories(run: Run) -> dict[tuple[str, str], list[EmailMessage]]:
    """(recipient, appointment id) -> that recipient's mails about it, in arrival order."""
    found: dict[tuple[str, str], list[EmailMessage]] = defaultdict(list)
    for mail in run.smtp.messages:
        if ADMIN in str(mail["To"]):
            continue
        [cal] = calendars(mail)
        [event] = cal.walk("VEVENT")
        appointment_id = str(event["UID"]).removeprefix("telemed-").split("@")[0]
        found[(str(mail["To"]), appointment_id)].append(mail)
    return found


def assert_one_story(run: Run, final: dict[str, datetime | None]) -> None:
    """``final``: each appointment's last start time, or None when it ends cancelled."""
    meetings = run.pipeline.meetings()
    told = stories(run)
    assert {a for _, a in told} == set(final)
    for (recipient, appointment_id), mails in told.items():
        where = f"{recipient} about {appointment_id}: " + " | ".join(
            f"{notice_kind(m)} v{_event(m)['SEQUENCE']}" for m in mails)
        assert notice_kind(mails[0]) == "invite", where  # never a "moved" about an unseen invite
        assert str(calendars(mails[0])[0]["METHOD"]) == "REQUEST", where
        sequences = [int(_event(m)["SEQUENCE"]) for m in mails]
        assert sequences == sorted(sequences), where  # versions never go backwards
        last = _event(mails[-1])
        if final[appointment_id] is None:
            assert notice_kind(mails[-1]) == "cancelled", where
            assert str(calendars(mails[-1])[0]["METHOD"]) == "CANCEL", where
        else:
            assert last.decoded("DTSTART") == final[appointment_id], where
            meeting = meetings[appointment_id]
            # The patient's entry holds their own registrant link; the doctor's the meeting's.
            link = patient_join_url(meeting) if ".patient." in str(mails[-1]["Message-ID"]) else meeting.join_url
            assert str(last["LOCATION"]) == link, where
    assert not mails_to(run.smtp.messages, ADMIN)  # superseded is not a failure
    rows = run.outbox(channel="mail")
    assert {r.status for r in rows} <= {"sent", "superseded"}, [(r.appointment_id, r.status) for r in rows]


def _first_of(appointment_id: str, role: str):  # type: ignore[no-untyped-def]
    return lambda m: str(m["Message-ID"]).strip().startswith(f"<{appointment_id}.v") and f".{role}." in str(m["Message-ID"])


def _event(mail: EmailMessage):  # type: ignore[no-untyped-def]
    [cal] = calendars(mail)
    [event] = cal.walk("VEVENT")
    return event


def test_a_move_while_the_first_invitation_is_being_sent(run_factory) -> None:  # type: ignore[no-untyped-def]
    """Deterministic: the doctor's first invitation is stuck mid-send (the SMTP server holds
    it unanswered) while the reschedule is synced and its notices are delivered."""
    run: Run = run_factory(public_url=False, webhook=False, TELEMED_SMTP_TIMEOUT_SECONDS="120")
    start = soon()
    hold = run.smtp.hold_next(lambda m: ".v1.doctor." in str(m["Message-ID"]))
    run.publish("H-1", 1, start)
    assert hold.arrived.wait(30), run.pipeline.worker_log()[-3000:]
    run.publish("H-1", 2, start + timedelta(hours=2), type="appointment.rescheduled")

    def v2_done_or_waiting() -> bool:
        if any(".v2.doctor." in str(m["Message-ID"]) for m in run.smtp.messages):
            return True  # sent while the invitation is still in flight: the story breaks
        return any("waits for an older one" in line and "H-1" in line and '"doctor"' in line
                   for line in run.pipeline.worker_log().splitlines())

    try:
        run.pipeline.wait_until(v2_done_or_waiting, timeout=30, what="the move to be sent or to wait")
    finally:
        hold.release()
    run.pipeline.wait_settled()
    assert_one_story(run, {"H-1": start + timedelta(hours=2)})
    doctor = [notice_kind(m) for m in mails_to(run.smtp.messages, "d-1@clinic.example")]
    assert doctor == ["invite", "updated"]  # the invitation was in flight: the move follows it


def test_a_reschedule_burst_racing_the_first_invitations(run_factory) -> None:  # type: ignore[no-untyped-def]
    """Six appointments booked, then each moved twice (two end cancelled) at once, while two
    first invitations are stuck mid-send and the rest race on the other worker threads."""
    run: Run = run_factory(public_url=False, webhook=False, TELEMED_SMTP_TIMEOUT_SECONDS="120")
    start = soon()
    ids = [f"R-{i}" for i in range(1, 7)]
    # Each holds a worker thread (of four), so two: the others keep the pipeline moving.
    holds = [run.smtp.hold_next(_first_of("R-1", "doctor")), run.smtp.hold_next(_first_of("R-2", "patient"))]
    for n, appointment_id in enumerate(ids):
        run.publish(appointment_id, 1, start + timedelta(hours=n))
    try:
        for hold in holds:
            assert hold.arrived.wait(60), [str(m["Message-ID"]) for m in run.smtp.messages]
        final: dict[str, datetime | None] = {}
        for n, appointment_id in enumerate(ids):
            run.publish(appointment_id, 2, start + timedelta(hours=n, minutes=30), type="appointment.rescheduled")
        for n, appointment_id in enumerate(ids):
            if n % 3 == 2:
                run.publish(appointment_id, 3, start, type="appointment.cancelled")
                final[appointment_id] = None
            else:
                moved_to = start + timedelta(hours=n, minutes=45)
                run.publish(appointment_id, 3, moved_to, type="appointment.rescheduled")
                final[appointment_id] = moved_to
        run.pipeline.wait_until(lambda: all(a.synced_version >= 3 for a in run.pipeline.appointments().values()),
                                timeout=90, what="every appointment to be synced to v3")
        time.sleep(1.0)  # the moves' mails now go out (or wait) while the two are in flight
    finally:
        for hold in holds:
            hold.release()
    run.pipeline.wait_settled(timeout=120)
    told = {appointment_id for _, appointment_id in stories(run)}
    # A cancelled appointment whose people heard nothing of it gets no mail at all.
    assert {a for a, t in final.items() if t is not None} <= told
    assert_one_story(run, {a: t for a, t in final.items() if a in told})
