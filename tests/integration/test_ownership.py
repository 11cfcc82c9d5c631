"""Whose a numbered queue message is (``store.ownership``, ``workers.queue.ownership``):
``telemed dlq --clinic``, the admin page's dead letters and a clinic's erasure ask it about
whatever number a dead letter carries, on both databases."""

from __future__ import annotations

import pytest

from telemed.store import notifications, ownership
from telemed.store.db import Database
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
