"""Process-wide logging: structlog and the standard library through one redacting chain.

Everything that prints a log line in a telemed process goes through one handler on the
root logger, formatted by :class:`structlog.stdlib.ProcessorFormatter`:

* structlog calls run the shared chain (context, level, timestamp, ``format_exc_info``,
  redaction) *before* they become ``logging`` records, so even a foreign handler that
  someone adds later only ever sees redacted event dicts;
* standard-library records (Dramatiq's "Failed to process message ... with unhandled
  exception.", with the message's arguments and a traceback) run the same chain as
  ``foreign_pre_chain``. Those records are raw until our formatter sees them, which is
  why configure_logging removes other root handlers by default (``force``).

Tracebacks are formatted to strings *before* redaction, so they are scrubbed like any
other text; renderers never receive an ``exc_info`` to format (Rich's pretty tracebacks,
with their local variables, would bypass redaction entirely).

Call :func:`configure_logging` once, early, in every process (CLI entry point, each
Dramatiq worker process, web server); it is idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from telemed.foundation.redaction import mask_request_target, redact_event_dict, scrub_text
from telemed.settings import get_settings

__all__ = [
    "LogFormat",
    "bind_context",
    "bound_context",
    "clear_context",
    "configure_logging",
    "get_logger",
    "reset_logging",
    "unbind_context",
]

LogFormat = Literal["auto", "json", "console"]

# Marks the handler we own, so a second configure_logging() replaces it instead of
# adding another (and reset_logging() removes only ours).
_HANDLER_FLAG = "_telemed_redacting_handler"
_state_lock = threading.Lock()
_saved_hooks: dict[str, Any] = {}


class _RedactingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
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


class _StderrRedactingHandler(_RedactingStreamHandler):
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


def _foreign_stack_info(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    # A stdlib record's stack_info is already a formatted string; StackInfoRenderer
    # would capture *our* stack instead, so just move it where renderers expect it.
    stack = event_dict.pop("stack_info", None)
    if isinstance(stack, str):
        event_dict["stack"] = stack
    return event_dict


# uvicorn's access line: '%s - "%s %s HTTP/%s" %d' (client, method, raw target, version, status).
_ACCESS_LOGGER = "uvicorn.access"
_ACCESS_TARGET_ARG = 2


def _mask_access_target(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
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


def _shared_processors() -> list[Processor]:
    """What both kinds of records get before exceptions are formatted and redacted.

    A fresh list per call: TimeStamper instances are cheap and chains must not share
    mutable state across reconfiguration."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _resolve_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    resolved = logging.getLevelNamesMapping().get(level.upper())
    if resolved is None:
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    return resolved


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def configure_logging(
    format: LogFormat = "auto",  # the public name callers use; shadows the builtin
    level: str | int = "INFO",
    stream: TextIO | None = None,
    *,
    force: bool = True,
    capture_uncaught: bool = True,
) -> None:
    """Route structlog and ``logging`` through one redacting chain to *stream*.

    *format*: ``"json"`` (one JSON object per line, for production and anything that is
    not a terminal), ``"console"`` (human-readable), or ``"auto"`` (console on a tty,
    JSON otherwise). *stream* defaults to ``sys.stderr``, looked up at every record
    (Dramatiq's worker processes swap it for a pipe to the parent, test runners for a
    capture buffer).

    *force* removes every other handler on the root logger, as
    ``logging.basicConfig(force=True)`` does: a handler someone else installed -- the
    ``dramatiq`` CLI calls ``basicConfig`` in each worker process -- would print raw,
    unredacted records next to ours. Pass ``force=False`` only where another handler is
    known to be harmless (pytest's log capture).

    *capture_uncaught* logs uncaught exceptions (main thread and other threads) and
    ``warnings`` through the chain instead of letting Python print raw tracebacks.
    """
    if format not in ("auto", "json", "console"):
        raise ValueError(f"log format {format!r} is not one of auto, json, console")
    numeric_level = _resolve_level(level)
    out = stream if stream is not None else sys.stderr
    use_console = format == "console" or (format == "auto" and _is_tty(out))

    renderer: Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(
            colors=_is_tty(out),
            # Never reached (format_exc_info already turned exc_info into a scrubbed
            # string), but if it were, a plain traceback beats Rich's locals dump.
            exception_formatter=structlog.dev.plain_traceback,
        )
    else:
        renderer = structlog.processors.JSONRenderer()

    redaction_tail: list[Processor] = [
        structlog.processors.format_exc_info,
        redact_event_dict,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_shared_processors(),
            structlog.stdlib.ExtraAdder(),
            _foreign_stack_info,
            _mask_access_target,
            *redaction_tail,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        pass_foreign_args=True,  # for _mask_access_target, which removes them
    )
    handler = _RedactingStreamHandler(stream) if stream is not None else _StderrRedactingHandler()
    setattr(handler, _HANDLER_FLAG, True)
    handler.setFormatter(formatter)

    with _state_lock:
        root = logging.getLogger()
        for existing in list(root.handlers):
            if force or getattr(existing, _HANDLER_FLAG, False):
                root.removeHandler(existing)
        root.addHandler(handler)
        _saved_hooks.setdefault("root_level", root.level)
        root.setLevel(numeric_level)

        structlog.configure(
            processors=[
                # Level check first: a disabled debug call costs almost nothing.
                structlog.stdlib.filter_by_level,
                *_shared_processors(),
                structlog.stdlib.PositionalArgumentsFormatter(),
                structlog.processors.StackInfoRenderer(),
                *redaction_tail,
                # Redacted before it becomes a LogRecord: no handler sees raw values.
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
            # Safe to cache: the chain above is the same for every format and level
            # (both live on the handler and the stdlib logger, read at call time).
            cache_logger_on_first_use=True,
        )

        if capture_uncaught:
            _install_hooks()


def reset_logging() -> None:
    """Undo :func:`configure_logging`: remove our handler, restore hooks and structlog
    defaults. For tests, and for embedding telemed in a host that owns logging."""
    with _state_lock:
        root = logging.getLogger()
        for existing in list(root.handlers):
            if getattr(existing, _HANDLER_FLAG, False):
                root.removeHandler(existing)
        if "root_level" in _saved_hooks:
            root.setLevel(_saved_hooks.pop("root_level"))
        _uninstall_hooks()
        structlog.reset_defaults()


def _log_uncaught(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        # Ctrl-C at the prompt: no traceback to hide worth a log line.
        sys.stderr.write("KeyboardInterrupt\n")
        return
    get_logger("telemed.uncaught").critical(
        "Uncaught exception", exc_info=(exc_type, exc, tb)
    )


def _log_uncaught_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    get_logger("telemed.uncaught").critical(
        "Uncaught exception in thread",
        thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _install_hooks() -> None:
    # Python's default hooks print the raw traceback -- exception messages included.
    if sys.excepthook is not _log_uncaught:
        _saved_hooks.setdefault("sys", sys.excepthook)
        sys.excepthook = _log_uncaught
    if threading.excepthook is not _log_uncaught_thread:
        _saved_hooks.setdefault("threading", threading.excepthook)
        threading.excepthook = _log_uncaught_thread
    logging.captureWarnings(True)


def _uninstall_hooks() -> None:
    if "sys" in _saved_hooks and sys.excepthook is _log_uncaught:
        sys.excepthook = _saved_hooks.pop("sys")
    if "threading" in _saved_hooks and threading.excepthook is _log_uncaught_thread:
        threading.excepthook = _saved_hooks.pop("threading")
    _saved_hooks.pop("sys", None)
    _saved_hooks.pop("threading", None)
    logging.captureWarnings(False)


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named like a stdlib logger (use ``__name__``).

    Safe to call at import time: the logger resolves its configuration on first use.
    """
    return structlog.stdlib.get_logger(name, **initial_values)


def bind_context(**ids: object) -> None:
    """Bind correlation ids (``event_id``, ``appointment_id``, ``message_id``, ...) to
    every log line of the current thread / task. ``None`` values are skipped, so
    ``bind_context(appointment_id=maybe_id)`` is fine."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in ids.items() if v is not None})


def unbind_context(*keys: str) -> None:
    """Remove some keys bound by :func:`bind_context`."""
    structlog.contextvars.unbind_contextvars(*keys)


def clear_context() -> None:
    """Remove everything bound in this thread / task (call at the end of a unit of work)."""
    structlog.contextvars.clear_contextvars()


@contextmanager
def bound_context(**ids: object) -> Iterator[None]:
    """Bind ids for the duration of a ``with`` block, restoring the previous values."""
    with structlog.contextvars.bound_contextvars(
        **{k: v for k, v in ids.items() if v is not None}
    ):
        yield


def setup_cli_logging() -> None:
    """Logging for a ``telemed`` subcommand, as the settings say."""
    settings = get_settings()
    configure_logging(format=settings.log_format, level=settings.log_level)
