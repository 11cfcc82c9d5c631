"""The import contracts (.importlinter) cover every module of the composition root.

import-linter checks only the layers it is told about: a new module in telemed/ that is
not listed in the top layer could be imported from below without the contract noticing.
"""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = {"events", "store", "zoom", "workers", "web", "foundation", "benchmarks"}


def _layers() -> list[set[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    raw = config["importlinter:contract:layers"]["layers"]
    return [{part.strip() for part in line.replace("|", ":").split(":")} for line in raw.strip().splitlines()]


def test_every_root_module_is_in_the_top_layer() -> None:
    own = {p.stem for p in (ROOT / "telemed").glob("*.py") if p.stem != "__init__"}
    assert own - _layers()[0] == set(), "add these to the first layer in .importlinter"


def test_every_room_is_a_layer_and_a_link_inside_the_package() -> None:
    listed = set().union(*_layers())
    assert listed >= ROOMS
    for room in ROOMS:
        link = ROOT / "telemed" / room
        assert link.is_symlink() and link.resolve() == (ROOT / room).resolve(), room
