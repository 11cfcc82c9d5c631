"""The logging chain's own processors: what every record gets first, a foreign record's
stack, and uvicorn's access line with its request target masked."""

from __future__ import annotations

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from telemed.foundation.redaction import mask_request_target


def foreign_stack_info(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    # A stdlib record's stack_info is already a formatted string; StackInfoRenderer
    # would capture *our* stack instead, so just move it where renderers expect it.
    stack = event_dict.pop("stack_info", None)
    if isinstance(stack, str):
        event_dict["stack"] = stack
    return event_dict


# uvicorn's access line: '%s - "%s %s HTTP/%s" %d' (client, method, raw target, version, status).
_ACCESS_LOGGER = "uvicorn.access"
_ACCESS_TARGET_ARG = 2


def mask_access_target(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Re-render uvicorn's access line with the request target masked by its structure.

    The raw target is whatever the client sent ("/start/%2565yJ..."): the content scanner
    looks for shapes, so the path is judged here, decoded, before the line is formatted.
    """
    # The formatter hands every foreign record's arguments over (pass_foreign_args); the
    # message is already rendered from them, so they go, unread, for all other records.
    raw_args = event_dict.pop("positional_args", None)
    record = event_dict.get("_record")
    if record is None or record.name != _ACCESS_LOGGER or not isinstance(raw_args, tuple):
        return event_dict
    args = list(raw_args)
    if len(args) > _ACCESS_TARGET_ARG and isinstance(args[_ACCESS_TARGET_ARG], str):
        args[_ACCESS_TARGET_ARG] = mask_request_target(args[_ACCESS_TARGET_ARG])
        try:
            event_dict["event"] = str(record.msg) % tuple(args)
        except (TypeError, ValueError):  # not the format we know: mask the whole line
            event_dict["event"] = "access line withheld (unknown format)"
    return event_dict


def shared_processors() -> list[Processor]:
    """What both kinds of records get before exceptions are formatted and redacted.

    A fresh list per call: TimeStamper instances are cheap and chains must not share
    mutable state across reconfiguration."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
