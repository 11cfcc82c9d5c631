"""The access API between clinics, on a real server and store: every principal of clinics
north, south and default against appointments of each, with the same ids in every clinic
(A-1, A-2, ... and doctors D-1, D-2) plus one appointment that only south has.

Only a clinic's own principals see its appointments; another clinic's appointment is the
same 404 as a missing one; the same id means each clinic's own appointment; start links
go only to that appointment's doctor and that clinic's admins, audited with the clinic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from telemed.store import appointments, clinics, notifications
from telemed.store.clinic_tables import CLINIC_DELETED
from telemed.store.models import utcnow
from tests.support.seeded_web import SeededWeb, doctor_host, seed_appointment, seed_meeting, seeded_web

pytestmark = pytest.mark.integration

CLINICS = ["north", "south", "default"]
ROLES = ["admin", "booking", "doctor:D-1", "doctor:D-2"]
OWNER = {"A-1": "D-1", "A-2": "D-2", "S-1": "D-1"}  # S-1: south's alone
SOUTH_ONLY = "S-1"


@pytest.fixture
def web(database_url: str, redis_url: str, redis_namespace: str, zoom_sim: Any, tmp_path: Any) -> Iterator[SeededWeb]:
    with seeded_web(database_url, redis_url, redis_namespace, zoom_sim, tmp_path, clinic_ids=CLINICS) as seeded:
        start = utcnow().replace(microsecond=0) + timedelta(days=3)
        only = seed_appointment("south", SOUTH_ONLY, "D-1", start)
        with seeded.database.session() as s:
            appointments.save(s, only)
        meeting = seed_meeting(seeded.context, only, doctor_host("south", "D-1"))
        with seeded.database.session() as s:
            appointments.save(s, meeting)
        seeded.meetings[meeting.appointment_id] = meeting.zoom_meeting_id
        yield seeded


def _key(clinic: str, appointment: str) -> str:
    return appointment if clinic == "default" else f"{clinic}/{appointment}"


def test_the_matrix_of_principals_and_clinics(web: SeededWeb) -> None:
    failures: list[str] = []
    disclosed: list[tuple[str, str, str]] = []
    cells = 0
    with httpx.Client(base_url=web.url, timeout=10) as client:
        for clinic in CLINICS:
            for role in ROLES:
                headers = {"Authorization": f"Bearer {web.clinic_keys[clinic][role]}"}
                for appointment in ("A-1", "A-2", SOUTH_ONLY):
                    owned = appointment != SOUTH_ONLY or clinic == "south"
                    mine = not role.startswith("doctor:") or role == f"doctor:{OWNER[appointment]}"
                    for endpoint in ("", "/meeting"):
                        cells += 1
                        cell = f"{clinic} {role} {appointment}{endpoint}"
                        answer = client.get(f"/v1/appointments/{appointment}{endpoint}", headers=headers)
                        if not (owned and mine):
                            # Exactly what a missing appointment gets: no way to learn it exists.
                            missing = client.get(f"/v1/appointments/NOPE{endpoint}", headers=headers)
                            if answer.status_code != 404 or answer.json()["detail"] != \
                                    missing.json()["detail"].replace("NOPE", appointment):
                                failures.append(f"{cell}: {answer.status_code} {answer.text[:100]}")
                            continue
                        if answer.status_code != 200:
                            failures.append(f"{cell}: {answer.status_code} {answer.text[:100]}")
                            continue
                        body = answer.json()
                        if not endpoint:
                            # The clinic's own ids, never a key of ours.
                            assert (body["id"], body["doctor_id"], body["clinic_id"]) == \
                                (appointment, OWNER[appointment], clinic), cell
                            continue
                        # The clinic's own meeting of that id, not another clinic's.
                        assert body["zoom_meeting_id"] == web.meetings[_key(clinic, appointment)], cell
                        assert body["appointment_id"] == appointment, cell
                        with_start = role == "admin" or role.startswith("doctor:")
                        if ("start_url" in body) != with_start:
                            failures.append(f"{cell}: start_url present={'start_url' in body}")
                        if "start_url" in body:
                            assert f"/s/{body['zoom_meeting_id']}?" in body["start_url"], cell
                            disclosed.append((clinic, role, appointment))
    assert not failures, "\n".join(failures)
    assert cells == len(CLINICS) * len(ROLES) * 3 * 2

    # Each start link is audited under the appointment's key, with the clinic of who asked.
    with web.database.session() as s:
        audits = notifications.disclosures(s)
    seen = sorted((a.appointment_id, a.doctor_id, a.principal.split(" key:")[0]) for a in audits)
    assert seen == sorted((_key(c, a), _key(c, OWNER[a]), f"{r} clinic:{c}") for c, r, a in disclosed)
    assert all(" key:" in a.principal for a in audits)


def test_a_doctor_gets_start_links_only_for_their_own_clinics_appointments(web: SeededWeb) -> None:
    """North's D-1 and south's D-1 share an id, not their appointments."""
    north = {"Authorization": f"Bearer {web.clinic_keys['north']['doctor:D-1']}"}
    south = {"Authorization": f"Bearer {web.clinic_keys['south']['doctor:D-1']}"}
    mine = httpx.get(f"{web.url}/v1/appointments/A-1/meeting", headers=north).json()
    theirs = httpx.get(f"{web.url}/v1/appointments/A-1/meeting", headers=south).json()
    assert mine["zoom_meeting_id"] == web.meetings["north/A-1"]
    assert theirs["zoom_meeting_id"] == web.meetings["south/A-1"]
    assert mine["zoom_meeting_id"] != theirs["zoom_meeting_id"]
    assert mine["start_url"] != theirs["start_url"]
    assert httpx.get(f"{web.url}/v1/appointments/{SOUTH_ONLY}/meeting", headers=north).status_code == 404


def test_a_deleted_clinics_keys_stop_working(web: SeededWeb) -> None:
    headers = {"Authorization": f"Bearer {web.clinic_keys['north']['admin']}"}
    assert httpx.get(f"{web.url}/v1/appointments/A-1", headers=headers).status_code == 200
    with web.database.session() as s:
        row = clinics.get_clinic(s, "north")
        assert row is not None
        row.status = CLINIC_DELETED
        s.add(row)
    web.context.clinics.forget()  # type: ignore[attr-defined]  # else within the directory's 5 s
    answer = httpx.get(f"{web.url}/v1/appointments/A-1", headers=headers)
    assert answer.status_code == 401
    assert httpx.get(f"{web.url}/v1/appointments/A-1",
                     headers={"Authorization": f"Bearer {web.clinic_keys['south']['admin']}"}).status_code == 200
