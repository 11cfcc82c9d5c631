"""``telemed demo`` (a real subprocess) shows that patients join with links of their own,
without printing one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_the_demo_shows_registrant_links(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env["COLUMNS"] = "200"
    done = subprocess.run([sys.executable, "-m", "telemed", "demo", "--bookings", "4", "--dir", str(tmp_path / "d")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "own link" in done.stdout and "patients registered in Zoom:" in done.stdout
    assert "?tk=…" in done.stdout and "tk=" not in done.stdout.replace("tk=…", "")  # the shape, never a key
    mails = list((tmp_path / "d" / "mail").glob("*.eml"))
    assert any("/w/" in m.read_text(errors="replace") for m in mails)
    # Two clinics: the second one's meetings in its own Zoom account, its mail from its sender.
    clinics = [line.split() for line in done.stdout.splitlines() if line.strip().startswith(("default ", "riverside "))]
    accounts = {row[0]: row[1] for row in clinics if row[1].endswith("account")}
    assert accounts == {"default": "demo-account", "riverside": "riverside-account"}
    senders = {m.read_text(errors="replace").split("\nFrom: ", 1)[1].split("\n", 1)[0] for m in mails}
    assert any("appointments@riverside.example" in s for s in senders)
    assert any("no-reply@telemed.invalid" in s for s in senders)
