"""The structlog processor: redact sensitive keys and scrub every string of an event."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, MutableMapping
from enum import Enum
from typing import Any, Final

from structlog.processors import format_exc_info

from telemed.foundation.redaction.keys import ALLOWED_KEYS, REDACTED, is_sensitive_key
from telemed.foundation.redaction.scanner import scrub_text

# --- Event dict processing -------------------------------------------------------------

_MAX_DEPTH: Final = 8
_ISO_TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?")
_SCALARS: Final = (int, float, bool, type(None))
# structlog.stdlib.ProcessorFormatter's bookkeeping; removed before rendering.
_PASSTHROUGH_KEYS: Final = frozenset({"_record", "_from_structlog", "_logger", "_name"})


def _to_text(value: object) -> str:
    """Stringify a non-plain object ourselves, so renderers never repr() it unscrubbed."""
    try:
        if isinstance(value, BaseException):
            return f"{type(value).__name__}: {value}"
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, Enum):
            return str(value.value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return repr(bytes(value))
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return f"<unprintable {type(value).__name__}>"


def redact_value(value: object, key: str | None = None, _depth: int = 0) -> object:
    """Redact one value found under *key* (``None`` for list items); returns a copy.

    Containers are rebuilt, never changed in place: the caller's objects are not ours.
    """
    if key is not None and key not in ALLOWED_KEYS and is_sensitive_key(key):
        # bool/None cannot carry a secret and say something useful ("password set?").
        return value if isinstance(value, (bool, type(None))) else REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, _SCALARS):
        return value
    if _depth >= _MAX_DEPTH:
        return "[TRUNCATED]"
    if isinstance(value, Mapping):
        out: dict[object, object] = {}
        for k, v in value.items():
            if isinstance(k, str):
                out[scrub_text(k)] = redact_value(v, k, _depth + 1)
            elif isinstance(k, _SCALARS):
                out[k] = redact_value(v, None, _depth + 1)
            else:
                out[scrub_text(_to_text(k))] = redact_value(v, None, _depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [redact_value(v, None, _depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return scrub_text(_to_text(value))


def redact_event_dict(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact sensitive keys and scrub every string, in place.

    Must run after ``format_exc_info`` so tracebacks are strings by now. If an
    ``exc_info`` is still here (a misordered chain), it is formatted here rather than
    left for a renderer that would print it raw.
    """
    if event_dict.get("exc_info"):
        event_dict = format_exc_info(logger, method, event_dict)
    for key, value in event_dict.items():
        if key in _PASSTHROUGH_KEYS:
            continue
        if key in ALLOWED_KEYS and isinstance(value, _SCALARS):
            continue
        if key == "timestamp" and isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value):
            continue  # our own TimeStamper's output: nothing to find, and it has colons
        event_dict[key] = redact_value(value, key)
    return event_dict
