"""Whose a numbered queue message is (``store.ownership``, ``workers.queue.ownership``):
``telemed dlq --clinic``, the admin page's dead letters and a clinic's erasure ask it about
whatever number a dead letter carries, on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from telemed.store import notifications, operations, ownership
from telemed.store.db import Database
from telemed.store.models import Doctor
from telemed.workers.queue.ownership import owners

pytestmark = pytest.mark.integration

# Numbers a poison message can carry that no outbox row or Zoom webhook receipt has; past
# 2**31 PostgreSQL refused the whole query ("integer out of range"), and `telemed dlq list`
# showed a traceback instead of the dead letters (tests/fuzz/test_poison_messages.py).
NO_ROW = [0, -1, 2**31, 2**31 + 7, 2**62, 2**64, -(2**70)]


def test_numbers_no_row_can_have_find_nothing_and_fail_nothing(database: Database) -> None:
    with database.session() as s:
        _alert_id, outbox_id = notifications.queue_alert(s, "notification_failed", "subject", "body",
                                                         clinic_id="clinic-a")
    with database.session() as s:
        assert ownership.outbox_owners(s, [outbox_id, *NO_ROW]) == {
            outbox_id: ownership.OutboxOwner("clinic-a", None, notifications.ADMIN_ROLE, "notification_failed")}
        assert ownership.receipt_owners(s, NO_ROW) == {}
    letters = [("deliver_notification", [n]) for n in NO_ROW]
    letters += [("notification_failed", [{"args": [n]}, {"retries": 8}]) for n in NO_ROW]
    letters += [("process_zoom_webhook", [n]) for n in NO_ROW]
    assert owners(database, [*letters, ("deliver_notification", [outbox_id])]) == [None] * len(letters) + ["clinic-a"]


def _deauthorized(s: Any, user: str) -> int:
    receipt, _ = operations.record_receipt(s, raw_body=f"deauth {user}".encode(), event="app_deauthorized",
                                           payload="{}", zoom_user_id=user)
    assert receipt.id is not None
    return receipt.id


def test_a_notice_about_a_zoom_user_is_the_clinic_of_its_doctors(database: Database) -> None:
    """As a clinic's erasure takes it (store.clinic_erasure): the clinic of every doctor with
    that Zoom user, if they are all of one clinic; the notice itself names no meeting."""
    with database.session() as s:
        s.add(Doctor(id="acme/D-1", clinic_id="acme", name="A", email="a@acme.example", zoom_user="Dr.A@acme.example"))
        s.add(Doctor(id="acme/D-2", clinic_id="acme", name="A2", email="a2@acme.example", zoom_user="dr.a@acme.example"))
        s.add(Doctor(id="bolt/D-1", clinic_id="bolt", name="S", email="s@x.example", zoom_user="shared@x.example"))
        s.add(Doctor(id="D-1", clinic_id="default", name="S", email="s@x.example", zoom_user="shared@x.example"))
        own, shared, nobody = (_deauthorized(s, u) for u in ("DR.A@ACME.example", "shared@x.example", "x@y.example"))
    with database.session() as s:
        assert ownership.receipt_owners(s, [own, shared, nobody]) == {own: ("acme", None)}
    assert owners(database, [("process_zoom_webhook", [r]) for r in (own, shared, nobody)]) == ["acme", None, None]


def test_thousands_of_letters_are_looked_up_in_bounded_batches(database: Database) -> None:
    """`telemed dlq list` looks through up to 100,000 dead letters; SQLite takes at most
    32,766 parameters in one statement (as built by default), PostgreSQL 65,535."""
    with database.session() as s:
        made = [notifications.queue_alert(s, "notification_failed", f"s{n}", "b", clinic_id="clinic-a")[1]
                for n in range(3)]
    asked = list(range(made[-1] + 1, made[-1] + 70_000)) + made
    with database.session() as s:
        assert sorted(ownership.outbox_owners(s, asked)) == made
        assert ownership.receipt_owners(s, asked) == {}
