"""``telemed publish``: events from a file or stdin, each accepted or rejected by name."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from events.errors import InvalidEvent


def split_events(raw: bytes) -> Iterator[tuple[str, Any]]:
    """Yield (where, item) for a JSON object, a JSON array, or JSON lines.

    An item that is not JSON is yielded as the raw text, so it is rejected by name
    instead of stopping the batch.
    """
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # not one document (or nested too deeply)
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"line {number}", line
        return
    if isinstance(whole, list):
        for index, item in enumerate(whole):
            yield f"item {index}", item
    else:
        yield "event", whole


def publish_stream(raw: bytes, out: Callable[[str], None], publish: Callable[[Any], Any] | None = None) -> int:
    """Publish every event; report each one. Exit status 1 when any was rejected."""
    if publish is None:
        from events import publish as default_publish

        publish = default_publish
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
