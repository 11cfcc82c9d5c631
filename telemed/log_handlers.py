"""The log handlers: they write to stderr (or a given stream) and cannot leak when a
record fails to format."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TextIO

from telemed.foundation.redaction import scrub_text


class RedactingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler whose error path cannot leak.

    ``logging.Handler.handleError`` prints the record's raw message and arguments to
    stderr when formatting fails -- exactly the unredacted data we exist to hide.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        if not logging.raiseExceptions:
            return
        # The last line of defence must not raise (a closed stderr, say).
        with contextlib.suppress(Exception):
            exc = sys.exc_info()[1]
            detail = scrub_text(f"{type(exc).__name__}: {exc}") if exc else "unknown error"
            sys.stderr.write(
                f"--- logging error in {record.name} at {record.pathname}:{record.lineno}: "
                f"{detail} (record dropped; message and arguments withheld)\n"
            )


class StderrRedactingHandler(RedactingStreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    Dramatiq's worker processes, pytest and click's test runner all swap ``sys.stderr``;
    a handler holding the stream it first saw would write to a closed one later (as
    ``logging.lastResort`` avoids in the same way).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns it; the property always reads sys.stderr
