"""The leak scanner itself: it finds a secret however it was written, and only where it
does not belong (pure; a scanner that never hits would make every scan pass)."""

from __future__ import annotations

import json
from email.message import EmailMessage

from tests.support.leaks import scan
from tests.support.leaks.leftovers import hits as _hits

ZAK = "Zk3_9xQvTq2-LmN8pR4sW7yB1cD5fG6hJ0kL"
PWD = "bP9xK2mQ7vN4wR8tY1zA3cE6gH"


def _canaries() -> scan.Canaries:
    canaries = scan.Canaries()
    canaries.add(scan.ZAK, ZAK, "A-1")
    canaries.add(scan.JOIN, PWD, "A-1")
    canaries.add(scan.PASSCODE, "Xy7Qw2Er9T", "A-1")
    canaries.add(scan.PATIENT_EMAIL, "Grace.Canary@Example.org", "A-1")
    canaries.add(scan.TOKEN, "tok_" + "a1B2c3D4" * 6)
    return canaries


def test_a_secret_is_found_however_it_was_written() -> None:
    line = json.dumps({"event": "GET", "url": f"https://zoom.us/s/123?zak={ZAK}&x=1"}).encode()
    assert scan.scan([scan.Place("worker log", line)], _canaries()) == ["start link zak of A-1 in worker log"]
    encoded = b"mailto:grace.canary%40example.org?subject=x"
    assert scan.scan([scan.Place("web log", encoded)], _canaries()) == ["patient email of A-1 in web log"]
    assert scan.scan([scan.Place("redis", b"Authorization: Bearer tok_" + b"a1B2c3D4" * 6)], _canaries()) == [
        "zoom access token in redis"]


def test_a_secret_inside_a_longer_run_is_not_a_hit() -> None:
    ciphertext = b"gAAAAABl" + b"Xy7Qw2Er9T" + b"Qk" * 30  # a passcode's letters inside a Fernet token
    assert scan.scan([scan.Place("database", ciphertext)], _canaries()) == []


def test_a_place_carries_only_its_own() -> None:
    canaries = _canaries()
    canaries.add(scan.JOIN, "otherJoinPwd123456", "B-2")

    def mail(to: str, message_id: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["To"], message["Message-ID"] = to, message_id
        message.set_content(body)
        return message

    mine = mail("grace.canary@example.org", "<A-1.v1.patient.invite@telemed.invalid>",
                f"Join: https://zoom.us/j/1?pwd={PWD} passcode Xy7Qw2Er9T")
    others = mail("grace.canary@example.org", "<A-1.v1.patient.updated@telemed.invalid>",
                  "Join: https://zoom.us/j/2?pwd=otherJoinPwd123456")
    host = mail("d-1@clinic.example", "<A-1.v1.doctor.invite@telemed.invalid>", f"Start: https://zoom.us/s/1?zak={ZAK}")
    assert scan.scan(scan.mail_places([mine, others, host], raw_start_links=True), canaries) == [
        "join link pwd of B-2 in mail <A-1.v1.patient.updated@telemed.invalid> to grace.canary@example.org"]
    assert scan.scan(scan.mail_places([host], raw_start_links=False), canaries) == [
        "start link zak of A-1 in mail <A-1.v1.doctor.invite@telemed.invalid> to d-1@clinic.example"]


def test_the_session_scan_knows_a_secret_by_its_shape() -> None:
    assert _hits("log", f'"url": "https://zoom.us/s/9?zak={ZAK}"'.encode(), emails=True)
    assert _hits("log", b"key tmk_0123456789_" + b"k" * 30, emails=True)
    assert _hits("log", b"to grace@example.org", emails=True)
    assert not _hits("db", b"to grace@example.org", emails=False)
    assert not _hits("log", b'"url": "https://zoom.us/s/9?zak=[REDACTED]" Bearer [REDACTED]', emails=True)
