"""Deleting a clinic with ``--delete-zoom-meetings``: its meetings still to come are deleted
in Zoom (the simulator, over HTTP) before any row goes; a Zoom failure stops the deletion
before any row is erased, and the same command run again finishes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.clinic_deletion import DeletionRefused, ZoomMeetings, delete_clinic
from telemed.settings import load_settings
from telemed.store import clinic_erasure
from telemed.store.clinic_tables import Clinic
from telemed.store.models import Meeting
from telemed.store.operations import ZoomWebhookReceipt
from telemed.workers.meetings.teardown import delete_upcoming_meetings
from telemed.zoom.errors import ZoomError
from telemed.zoom.policy import build_meeting_request, generate_passcode, make_marker
from telemed.zoom.simulator import ZoomSimulator
from tests.support.clinic_data import Seeded, rows_of, seed_clinic, traces_in_store
from tests.support.contexts import cipher_database, worker_context

pytestmark = pytest.mark.integration


@pytest.fixture
def ctx(backend: tuple[str, str], redis_namespace: str, tmp_path: Path, zoom_sim: ZoomSimulator) -> Iterator[Any]:
    redis_url, database_url = backend
    key = Fernet.generate_key().decode()
    database = cipher_database(database_url, [key])
    settings = load_settings(
        redis_url=redis_url, redis_namespace=redis_namespace, database_url=database_url, secret_keys=key,
        data_dir=tmp_path, zoom_api_url=zoom_sim.api_url, zoom_oauth_url=zoom_sim.oauth_url,
        zoom_account_id=zoom_sim.account_id, zoom_client_id=zoom_sim.client_id,
        zoom_client_secret=zoom_sim.client_secret,
    )
    context = worker_context(settings, database)
    yield context
    for leftover in context.redis.scan_iter(match=f"{redis_namespace}*", count=500):
        context.redis.delete(leftover)
    context.redis.close()
    database.dispose()


def _meetings_in_zoom(ctx: Any, zoom_sim: ZoomSimulator, seeded: Seeded, *, past: int = 0) -> dict[str, int]:
    """Give each of the clinic's meetings a real one in the simulator (hosted by the
    clinic's own account app for the doctor's Zoom user, as the workers make them); the
    first ``past`` are over already."""
    assert seeded.zoom_account is not None
    account_id, client_id = seeded.zoom_account
    zoom_sim.add_account(account_id, client_id, seeded.zoom_secret)
    zoom = ctx.account_client(seeded.clinic_id)
    clinic_id = seeded.clinic_id
    made = {}
    with ctx.database.session() as s:
        rows = [m for m in s.exec(select(Meeting)) if m.appointment_id.startswith(f"{clinic_id}/")]
        for index, meeting in enumerate(sorted(rows, key=lambda m: m.appointment_id)):
            start = datetime.now(UTC).replace(microsecond=0) + (timedelta(days=-3) if index < past else timedelta(days=2))
            created = zoom.create_meeting(meeting.host, build_meeting_request(
                topic="visit", start_time=start, duration_minutes=30, timezone="UTC",
                passcode=generate_passcode(), marker=make_marker(meeting.appointment_id)))
            # The seeded Zoom notice about the meeting follows it to its real id: a notice
            # about a meeting replaced since names an id no row holds (docs/operations.md).
            for receipt in s.exec(select(ZoomWebhookReceipt).where(
                    ZoomWebhookReceipt.zoom_meeting_id == meeting.zoom_meeting_id)):
                receipt.zoom_meeting_id = int(created["id"])
                s.add(receipt)
            meeting.zoom_meeting_id, meeting.start_time = int(created["id"]), start
            s.add(meeting)
            made[meeting.appointment_id] = int(created["id"])
    return made


def _live(zoom_sim: ZoomSimulator) -> set[int]:
    return {int(m["id"]) for m in zoom_sim.meetings(include_deleted=False)}


def test_upcoming_meetings_are_deleted_in_zoom_first(ctx: Any, zoom_sim: ZoomSimulator,
                                                     redis_namespace: str) -> None:
    acme = _meetings_in_zoom(ctx, zoom_sim, seed_clinic(ctx.database, "acme"), past=1)
    bolt = _meetings_in_zoom(ctx, zoom_sim, seed_clinic(ctx.database, "bolt", meeting_base=100))
    over = acme.pop("acme/APT-1")
    gone = acme.pop("acme/APT-2")
    ctx.account_client("acme").delete_meeting(gone)  # deleted by hand in Zoom meanwhile
    assert set(bolt.values()) | set(acme.values()) | {over} <= _live(zoom_sim)

    report = delete_clinic(ctx.database, ctx.redis, redis_namespace, "acme", zoom_meetings=ZoomMeetings.DELETE,
                           delete_zoom_meetings=lambda clinic: delete_upcoming_meetings(ctx, clinic))
    assert report.zoom is not None and (report.zoom.deleted, report.zoom.already_gone) == (1, 1)
    live = _live(zoom_sim)
    assert not set(acme.values()) & live  # the one still to come is gone from Zoom
    assert over in live  # a meeting already over is history, not touched
    assert set(bolt.values()) <= live  # another clinic's meetings stay
    assert traces_in_store(ctx.database, Seeded("acme")) == []


def test_a_zoom_failure_stops_before_any_row_is_erased(ctx: Any, zoom_sim: ZoomSimulator,
                                                       redis_namespace: str) -> None:
    made = _meetings_in_zoom(ctx, zoom_sim, seed_clinic(ctx.database, "acme"))
    with ctx.database.session() as s:
        before = len(clinic_erasure.upcoming_meetings(s, "acme"))
    assert before == 3

    def teardown(clinic: str) -> Any:
        return delete_upcoming_meetings(ctx, clinic)

    with pytest.raises(DeletionRefused, match="--delete-zoom-meetings"):  # no choice made: nothing changes
        delete_clinic(ctx.database, ctx.redis, redis_namespace, "acme")
    zoom_sim.inject_failure(400, {"code": 3000, "message": "cannot delete"}, method="DELETE")
    with pytest.raises(ZoomError, match="cannot delete"):  # the injected failure, not a refused app
        delete_clinic(ctx.database, ctx.redis, redis_namespace, "acme", zoom_meetings=ZoomMeetings.DELETE,
                      delete_zoom_meetings=teardown)
    rows = rows_of(ctx.database, Seeded("acme"))
    assert len(rows["appointments"]) == 3 and len(rows["meetings"]) == 3  # no row erased
    with ctx.database.session() as s:
        assert s.get(Clinic, "acme").status == "deleting"  # type: ignore[union-attr]
    assert set(made.values()) <= _live(zoom_sim)

    report = delete_clinic(ctx.database, ctx.redis, redis_namespace, "acme", zoom_meetings=ZoomMeetings.DELETE,
                           delete_zoom_meetings=teardown)
    assert report.zoom is not None and report.zoom.deleted == 3
    assert not set(made.values()) & _live(zoom_sim)
    assert traces_in_store(ctx.database, Seeded("acme")) == []
