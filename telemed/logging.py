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

The handlers are in ``telemed.log_handlers``, the chain's own processors in
``telemed.log_processors``.

Call :func:`configure_logging` once, early, in every process (CLI entry point, each
Dramatiq worker process, web server); it is idempotent.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import Processor

from telemed.foundation.redaction import redact_event_dict
from telemed.log_handlers import RedactingStreamHandler, StderrRedactingHandler
from telemed.log_processors import foreign_stack_info, mask_access_target, shared_processors
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
            *shared_processors(),
            structlog.stdlib.ExtraAdder(),
            foreign_stack_info,
            mask_access_target,
            *redaction_tail,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        pass_foreign_args=True,  # for mask_access_target, which removes them
    )
    handler = RedactingStreamHandler(stream) if stream is not None else StderrRedactingHandler()
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
                *shared_processors(),
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
