"""The access API on a real server and a real store: every principal against every
endpoint, start links minted by the Zoom simulator, every disclosure audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from telemed.store import notifications
from tests.support.seeded_web import PATIENT_NAMES, SeededWeb, seeded_web

pytestmark = pytest.mark.integration

PRINCIPALS = ["none", "garbage", "revoked", "admin", "booking", "doctor:D-1", "doctor:D-2"]
APPOINTMENTS = ["A-1", "A-2", "A-C", "A-P", "A-X"]
OWNER = {"A-1": "D-1", "A-2": "D-2", "A-C": "D-1", "A-P": "D-1"}
LIVE = {"A-1", "A-2"}


@pytest.fixture
def web(database_url: str, redis_url: str, redis_namespace: str, zoom_sim: Any, tmp_path: Any) -> Iterator[SeededWeb]:
    with seeded_web(database_url, redis_url, redis_namespace, zoom_sim, tmp_path) as seeded:
        yield seeded


def headers(web: SeededWeb, principal: str) -> dict[str, str]:
    if principal == "none":
        return {}
    if principal == "garbage":
        return {"Authorization": "Bearer tmk_0000000000_" + "x" * 43}
    if principal == "revoked":
        return {"Authorization": f"Bearer {web.revoked_key}"}
    return {"Authorization": f"Bearer {web.keys[principal]}"}


def expected(principal: str, appointment: str, endpoint: str) -> tuple[int, bool]:
    """(status, start link included) for one cell of the matrix."""
    if principal in {"none", "garbage", "revoked"}:
        return 401, False
    if appointment == "A-X":
        return 404, False
    if principal.startswith("doctor:") and OWNER[appointment] != principal.split(":")[1]:
        return 404, False  # another doctor's appointment looks like no appointment at all
    if endpoint == "appointment":
        return 200, False
    if appointment not in LIVE:
        return 404, False
    return 200, principal in {"admin"} or principal.startswith("doctor:")


def test_the_whole_principal_by_endpoint_matrix(web: SeededWeb, zoom_sim: Any) -> None:
    failures: list[str] = []
    disclosed: list[tuple[str, str]] = []
    bodies: list[str] = []
    with httpx.Client(base_url=web.url, timeout=10) as client:
        for principal in PRINCIPALS:
            for appointment in APPOINTMENTS:
                for endpoint, path in (("appointment", f"/v1/appointments/{appointment}"),
                                       ("meeting", f"/v1/appointments/{appointment}/meeting")):
                    response = client.get(path, headers=headers(web, principal))
                    bodies.append(response.text)
                    status, with_start = expected(principal, appointment, endpoint)
                    cell = f"{principal} {endpoint} {appointment}"
                    if response.status_code != status:
                        failures.append(f"{cell}: {response.status_code} != {status} ({response.text[:120]})")
                        continue
                    body = response.json()
                    if status == 401:
                        assert response.headers.get("www-authenticate") == "Bearer", cell
                    if status != 200:
                        assert isinstance(body.get("detail"), str), cell
                        continue
                    if endpoint == "appointment":
                        assert body["id"] == appointment and body["doctor_id"] == OWNER[appointment], cell
                        assert ("notifications" in body) == (principal == "admin"), cell
                        assert "join_url" not in body and "start_url" not in body, cell
                        continue
                    assert response.headers["cache-control"] == "no-store", cell
                    assert "zoom.us/j/" in body["join_url"] and body["passcode"], cell
                    if ("start_url" in body) != with_start:
                        failures.append(f"{cell}: start_url present={'start_url' in body}, expected {with_start}")
                    if with_start:
                        assert "zak=" in body["start_url"], cell
                        disclosed.append((principal, appointment))
    assert not failures, "\n".join(failures)

    # Every start link handed out was minted by Zoom just now, and audited without the URL.
    with web.database.session() as s:
        audits = notifications.disclosures(s)
    assert sorted((a.principal.split(" ")[0], a.appointment_id) for a in audits) == sorted(disclosed)
    assert all(a.via == "api" and a.doctor_id == OWNER[a.appointment_id] for a in audits)
    assert all(" key:" in a.principal for a in audits)
    assert len(zoom_sim.requests(method="GET")) >= len(disclosed)
    # No patient data is ever served by this API, to anyone.
    served = "\n".join(bodies)
    for name in PATIENT_NAMES.values():
        assert name not in served
    assert "canary@example.org" not in served


def test_a_key_in_the_x_api_key_header_works_too(web: SeededWeb) -> None:
    response = httpx.get(f"{web.url}/v1/appointments/A-1", headers={"X-API-Key": web.keys["booking"]})
    assert response.status_code == 200 and response.json()["status"] == "scheduled"


def test_a_malformed_id_is_a_clear_422(web: SeededWeb) -> None:
    response = httpx.get(f"{web.url}/v1/appointments/A%201", headers=headers(web, "admin"))
    assert response.status_code == 422
    assert "appointment_id" in str(response.json()["detail"])


def test_zoom_trouble_is_a_503_and_nothing_is_audited(web: SeededWeb, zoom_sim: Any) -> None:
    zoom_sim.inject_failure(503, {"code": 503, "message": "unavailable"}, count=10, method="GET",
                            path_prefix="/v2/meetings")
    response = httpx.get(f"{web.url}/v1/appointments/A-1/meeting", headers=headers(web, "doctor:D-1"))
    assert response.status_code == 503 and "Zoom" in response.json()["detail"]
    with web.database.session() as s:
        assert notifications.disclosures(s) == []
    # The booking system never needs Zoom for its view.
    response = httpx.get(f"{web.url}/v1/appointments/A-1/meeting", headers=headers(web, "booking"))
    assert response.status_code == 200


def test_the_api_is_described_in_openapi(web: SeededWeb) -> None:
    spec = httpx.get(f"{web.url}/openapi.json").json()
    assert {"/v1/appointments/{appointment_id}", "/v1/appointments/{appointment_id}/meeting",
            "/start/{token}"} <= set(spec["paths"])
