"""``telemed publish``: events from a file or stdin, each accepted or rejected by name.

An operator's tool: it writes to the store directly and signs nothing, so it trusts the
operator's ``--clinic`` (the door's cross-clinic check is for booking systems' keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from telemed.events import publish as default_publish
from telemed.events.errors import InvalidEvent
from telemed.foundation.tenancy import DEFAULT_CLINIC


def split_events(raw: bytes) -> Iterator[tuple[str, str]]:
    """Yield (where, JSON text of one item) for a JSON object, a JSON array, or JSON lines.

    Each item stays text until ``publish`` reads it strictly (``events.strict_json``): an
    item with a duplicate key or a huge number is rejected by name, with the reason,
    instead of stopping the batch, and a JSON string is never decoded a second time.
    """
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return
    if not _well_formed(text):  # not one document (or nested too deeply): JSON lines
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"line {number}", line
    elif text.startswith("["):
        yield from _array_items(text)
    else:
        yield "event", text


# Only finds where values end: it keeps the last of two keys and reads numbers as text, so
# it never refuses what the strict reading of each item (in ``publish``) refuses by name.
_BOUNDARIES = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)
_SPACE = " \t\n\r"


def _well_formed(text: str) -> bool:
    try:
        _BOUNDARIES.decode(text)
    except (ValueError, RecursionError):
        return False
    return True


def _array_items(text: str) -> Iterator[tuple[str, str]]:
    """The raw text of each item of a well-formed JSON array."""
    position, index = _skip_space(text, 1), 0
    while text[position] != "]":
        _, end = _BOUNDARIES.raw_decode(text, position)
        yield f"item {index}", text[position:end]
        index += 1
        position = _skip_space(text, end)
        if text[position] == ",":
            position = _skip_space(text, position + 1)


def _skip_space(text: str, position: int) -> int:
    while text[position] in _SPACE:
        position += 1
    return position


def publish_stream(raw: bytes, out: Callable[[str], None], publish: Callable[[Any], Any] | None = None,
                   clinic_id: str = DEFAULT_CLINIC) -> int:
    """Publish every event into ``clinic_id``; report each one. Exit status 1 when any was rejected."""
    if publish is None:
        def publish(item: Any) -> Any:
            return default_publish(item, clinic_id)
    accepted = duplicate = rejected = 0
    for where, item in split_events(raw):
        try:
            result = publish(item)
        except InvalidEvent as exc:
            rejected += 1
            out(f"{where}: rejected")
            for error in exc.errors:
                out(f"  {format_loc(error['loc'])}: {_visible(error['msg'])}")
            continue
        if result.status == "accepted":
            accepted += 1
        else:
            duplicate += 1
        out(f"{where}: {result.event_id} {result.status}")
    out(f"{accepted} accepted, {duplicate} duplicate, {rejected} rejected")
    return 1 if rejected else 0


_PLAIN_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def format_loc(loc: list[str | int]) -> str:
    """``appointment.doctor.email``; a field name that is not plain (a space, a dot,
    nothing at all) is quoted, so every path printed is unambiguous."""
    parts = [str(p) if _PLAIN_SEGMENT.match(str(p)) else _visible(repr(str(p))) for p in loc]
    return ".".join(parts) or "(event)"


def _visible(text: str) -> str:
    """Control characters from the input (a field named "\\r", an escape sequence in an
    address) shown escaped, so they cannot break the report's lines or the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clinic_problem(clinic_id: str) -> str | None:
    """Why events cannot be published into ``clinic_id`` (None: they can)."""
    # lazy: only when a clinic other than the default is named
    from telemed.bootstrap import database
    from telemed.settings import get_settings
    from telemed.store.clinic_tables import CLINIC_ACTIVE
    from telemed.store.clinics import get_clinic

    if clinic_id == DEFAULT_CLINIC:
        return None
    db = database(get_settings())
    try:
        with db.session() as session:
            row = get_clinic(session, clinic_id)
            status = None if row is None else row.status
    finally:
        db.dispose()
    if status is None:
        return f"no clinic {clinic_id!r} (see telemed clinics list)"
    if status != CLINIC_ACTIVE:
        return f"clinic {clinic_id!r} is {status}"
    return None
