"""EmlDirectoryChannel: the zero-configuration channel writes one .eml file per message."""

from __future__ import annotations

import email
import email.policy
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from telemed.workers.notifier import calendar
from telemed.workers.notifier.mail import DeliveryError, EmlDirectoryChannel
from telemed.workers.notifier.render import render_patient
from tests.support.invitations import invitation
from tests.support.mail_scan import bare_line_feeds, calendar_parts
from tests.support.notices import JOIN, patient

pytestmark = pytest.mark.integration

FROM = "telemed <no-reply@telemed.example>"
NAME = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{32}\.eml$")


def test_writes_a_private_parseable_eml_file(tmp_path: Path) -> None:
    directory = tmp_path / "mail" / "out"  # created on first use
    channel = EmlDirectoryChannel(directory)
    message = render_patient(patient(), FROM)
    path = channel.write(message)

    assert path.parent == directory and NAME.match(path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert os.listdir(directory) == [path.name]  # no temp file left behind

    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == message["Subject"]
    assert parsed["Message-ID"] == message["Message-ID"]
    assert JOIN in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_send_satisfies_the_channel_protocol_and_names_sort_by_time(tmp_path: Path) -> None:
    channel = EmlDirectoryChannel(tmp_path)
    for kind in ("invite", "updated", "reminder"):
        channel.send(render_patient(patient(kind=kind), FROM))
    names = sorted(os.listdir(tmp_path))
    subjects = [
        email.message_from_bytes((tmp_path / n).read_bytes(), policy=email.policy.default)[
            "Subject"
        ]
        for n in names
    ]
    assert [s.split(":")[0] for s in subjects] == [
        "Your video appointment with Dr. Ada Lovelace on Thursday, 3 December 2026, 09",
        "Changed",
        "Reminder",
    ]


def test_concurrent_writers_never_collide(tmp_path: Path) -> None:
    channel = EmlDirectoryChannel(tmp_path)
    message = render_patient(patient(), FROM)
    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: channel.write(message), range(40)))
    assert len(set(paths)) == 40
    assert len(os.listdir(tmp_path)) == 40


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("telemed.workers.notifier.eml.os.replace", broken_replace)
    with pytest.raises(DeliveryError) as caught:
        EmlDirectoryChannel(tmp_path).send(render_patient(patient(), FROM))
    assert os.listdir(tmp_path) == []
    assert JOIN not in str(caught.value)


def test_directory_that_is_a_file_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("not a directory")
    with pytest.raises(DeliveryError):
        EmlDirectoryChannel(blocker).send(render_patient(patient(), FROM))


def test_the_calendar_parts_in_the_file_keep_crlf_line_ends(tmp_path: Path) -> None:
    message = render_patient(patient(), FROM)
    ics = calendar.build_ics(invitation())
    calendar.attach(message, ics, calendar.Method.REQUEST)
    path = EmlDirectoryChannel(tmp_path).write(message)
    parts = calendar_parts(path.read_bytes())
    assert parts == [ics, ics] and bare_line_feeds(ics) == 0
