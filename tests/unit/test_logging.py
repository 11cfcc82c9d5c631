"""Whole log lines, both renderers, both front doors (structlog and ``logging``), and a
real Dramatiq worker: no canary from test_redaction.py may reach the output, while the
ids that make logs useful must.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from telemed.logging import (
    bind_context,
    bound_context,
    clear_context,
    configure_logging,
    get_logger,
    reset_logging,
    unbind_context,
)
from telemed.workers.queue.log_context import LogContextMiddleware, install_log_context
from tests.support.redaction_canaries import (
    ACCESS_TOKEN,
    BASIC_CRED,
    BEARER_TOKEN,
    CLIENT_SECRET,
    FERNET_TOKEN,
    JOIN_URL,
    PASSCODE,
    PATIENT_EMAIL,
    PATIENT_NAME,
    REFRESH_TOKEN,
    SECRET_FRAGMENTS,
    SMTP_URL,
    START_URL,
    assert_no_canary,
)

FORMATS = ("json", "console")

Configure = Callable[..., io.StringIO]


@pytest.fixture
def configure() -> Iterator[Configure]:
    """configure_logging into a fresh buffer; undone after the test."""

    def _configure(fmt: str = "json", level: str = "DEBUG", **kwargs: Any) -> io.StringIO:
        buf = io.StringIO()
        configure_logging(fmt, level, buf, **kwargs)  # type: ignore[arg-type]
        return buf

    clear_context()
    yield _configure
    clear_context()
    reset_logging()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class ZoomAPIError(RuntimeError):
    """Stands in for the Zoom client's error: its text quotes the failed request."""


def _refresh_tokens(passcode: str, patient: dict[str, str]) -> None:
    # The literal canaries on the next line end up in the traceback's source text.
    raise ZoomAPIError("POST /oauth/token failed: refresh_token=CANARYrefresh0123456789abcdef client_secret=CANARYclientSecret42")


def _create_meeting() -> None:
    try:
        _refresh_tokens(PASSCODE, {"email": PATIENT_EMAIL, "name": PATIENT_NAME})
    except ZoomAPIError as exc:
        error = ZoomAPIError(
            f"401 code=124 for {START_URL} (join {JOIN_URL}); "
            f"Authorization: Bearer {BEARER_TOKEN}; sent {{'password': '{PASSCODE}'}}"
        )
        error.add_note(f"patient {PATIENT_EMAIL}, stored token {FERNET_TOKEN}")
        raise error from exc


def _caught() -> BaseException:
    try:
        _create_meeting()
    except ZoomAPIError as exc:
        return exc
    raise AssertionError("unreachable")


# --- structlog front door -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_structlog_canaries_in_every_position_are_masked(configure: Configure, fmt: str) -> None:
    buf = configure(fmt)
    log = get_logger("telemed.tests")
    bind_context(event_id="evt-7f3c", appointment_id="A-1001")

    log.info(f"meeting ready for {PATIENT_EMAIL}: start {START_URL}", meeting_id=81234567890)
    log.info("meeting created", start_url=START_URL, join_url=JOIN_URL, passcode=PASSCODE,
             patient_name=PATIENT_NAME, zoom_meeting_id=81234567890, status="created")
    log.info(
        "zoom response",
        body={
            "id": 81234567890,
            "start_url": START_URL,
            "settings": {"password": PASSCODE, "alternative_hosts": PATIENT_EMAIL},
            "tokens": [ACCESS_TOKEN, FERNET_TOKEN],
        },
        request_headers={"Authorization": f"Basic {BASIC_CRED}"},
        form=f"grant_type=refresh_token&refresh_token={REFRESH_TOKEN}",
        smtp=SMTP_URL,
    )
    log.warning("patient %s could not be reached", PATIENT_EMAIL)  # positional args
    try:
        _create_meeting()
    except ZoomAPIError:
        log.exception("zoom call failed", meeting_id=81234567890)
    exc = _caught()
    log.error("zoom call failed again", exc_info=exc)
    # Traceback text with local variables, as a debugging helper might log it.
    assert exc.__cause__ is not None
    locals_text = "".join(
        traceback.TracebackException.from_exception(exc.__cause__, capture_locals=True).format()
    )
    assert PASSCODE in locals_text and PATIENT_EMAIL in locals_text  # the test is real
    log.error("traceback with locals", traceback_text=locals_text)

    out = buf.getvalue()
    assert_no_canary(out)
    for useful in ("evt-7f3c", "A-1001", "81234567890", "meeting ready for", "zoom call failed",
                   "ZoomAPIError", "Traceback (most recent call last)", "_refresh_tokens",
                   "https://zoom.us/s/", "https://zoom.us/j/987654321", "smtp.example.org",
                   "could not be reached", "created"):
        assert useful in out, useful
    if fmt == "json":
        lines = json_lines(out)
        assert len(lines) == 7
        assert all(line["event_id"] == "evt-7f3c" and line["appointment_id"] == "A-1001"
                   for line in lines)
        assert lines[1]["zoom_meeting_id"] == 81234567890
        assert lines[1]["passcode"] == "[REDACTED]"
        assert lines[4]["level"] == "error" and "exception" in lines[4]
        # Decoded values, not just the JSON text, are clean too.
        assert_no_canary(repr(lines))


@pytest.mark.parametrize("fmt", FORMATS)
def test_stdlib_logging_as_dramatiq_does_it(configure: Configure, fmt: str) -> None:
    buf = configure(fmt)
    bind_context(message_id="m-42", actor="sync_meeting")
    logger = logging.getLogger("dramatiq.worker.WorkerThread")
    message = MessageProxy(
        dramatiq.Message(
            queue_name="default",
            actor_name="sync_meeting",
            # Ids only, by design -- but a mistake must not leak either.
            args=("A-1001",),
            kwargs={"start_url": START_URL, "patient": {"email": PATIENT_EMAIL}},
            options={},
        )
    )
    try:
        _create_meeting()
    except ZoomAPIError:
        logger.error("Failed to process message %s with unhandled exception.", message,
                     exc_info=True)
    logger.warning("Retries exceeded for message %r.", message.message_id)
    logging.getLogger("telemed.zoom").info("token for %s is %s", PATIENT_EMAIL,
                                           f"access_token={ACCESS_TOKEN}")
    logging.getLogger("telemed.zoom").info("stack please", stack_info=True,
                                           extra={"client_secret": CLIENT_SECRET})

    out = buf.getvalue()
    assert_no_canary(out)
    assert "Failed to process message sync_meeting('A-1001'" in out
    assert "with unhandled exception." in out
    assert "ZoomAPIError" in out and "Traceback (most recent call last)" in out
    assert "dramatiq.worker.WorkerThread" in out
    assert "m-42" in out
    if fmt == "json":
        failure = json_lines(out)[0]
        assert failure["logger"] == "dramatiq.worker.WorkerThread"
        assert failure["level"] == "error"
        assert failure["message_id"] == "m-42" and failure["actor"] == "sync_meeting"
        assert "_refresh_tokens" in failure["exception"]
        assert json_lines(out)[3]["client_secret"] == "[REDACTED]"
        assert "Stack (most recent call last)" in json_lines(out)[3]["stack"]


def test_auto_is_json_off_a_terminal_and_console_on_one(configure: Configure) -> None:
    buf = configure("auto")
    get_logger("t").info("hello", appointment_id="A-1")
    assert json_lines(buf.getvalue())[0]["event"] == "hello"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    configure_logging("auto", "INFO", tty)
    get_logger("t").info("hello", appointment_id="A-1", passcode=PASSCODE)
    text = tty.getvalue()
    assert "hello" in text and "appointment_id" in text and not text.startswith("{")
    assert_no_canary(text)


def test_configuring_twice_keeps_one_handler(configure: Configure) -> None:
    configure("json")
    buf = configure("json")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_telemed_redacting_handler", False)]
    assert len(ours) == 1
    get_logger("t").info("once")
    logging.getLogger("x").warning("also once")
    assert [line["event"] for line in json_lines(buf.getvalue())] == ["once", "also once"]


def test_force_removes_handlers_that_would_print_raw_records(configure: Configure) -> None:
    raw = io.StringIO()
    foreign = logging.StreamHandler(raw)  # what dramatiq's CLI basicConfig installs
    logging.getLogger().addHandler(foreign)
    try:
        buf = configure("json")
        assert foreign not in logging.getLogger().handlers
        logging.getLogger("dramatiq").error("password=%s", PASSCODE)
        assert raw.getvalue() == ""
        assert_no_canary(buf.getvalue())

        logging.getLogger().addHandler(foreign)
        configure("json", force=False)
        assert foreign in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(foreign)


def test_level_filters_both_front_doors(configure: Configure) -> None:
    buf = configure("json", level="INFO")
    get_logger("t").debug("hidden")
    logging.getLogger("x").debug("hidden too")
    get_logger("t").info("shown")
    assert [line["event"] for line in json_lines(buf.getvalue())] == ["shown"]
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "LOUD", io.StringIO())
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "INFO", io.StringIO())  # type: ignore[arg-type]


def test_a_broken_log_call_does_not_print_its_raw_arguments(
    configure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("json")
    # "%d" with a string fails inside the formatter; logging's default error handler
    # would print the message and its arguments to stderr.
    logging.getLogger("telemed.zoom").error("%d tokens", f"refresh_token={REFRESH_TOKEN}")
    err = capsys.readouterr().err
    assert "logging error" in err
    assert_no_canary(err)


def test_uncaught_exceptions_go_through_the_chain(configure: Configure) -> None:
    buf = configure("json")
    exc = _caught()
    sys.excepthook(type(exc), exc, exc.__traceback__)

    def boom() -> None:
        raise ZoomAPIError(f"thread died holding {START_URL}")

    thread = threading.Thread(target=boom, name="sync-worker")
    thread.start()
    thread.join()

    lines = json_lines(buf.getvalue())
    assert [line["event"] for line in lines] == ["Uncaught exception", "Uncaught exception in thread"]
    assert lines[1]["thread"] == "sync-worker"
    assert all("ZoomAPIError" in line["exception"] for line in lines)
    assert_no_canary(buf.getvalue())


def test_reset_restores_the_hooks(configure: Configure) -> None:
    before = (sys.excepthook, threading.excepthook)
    configure("json")
    assert sys.excepthook is not before[0]
    reset_logging()
    assert (sys.excepthook, threading.excepthook) == before


def test_warnings_are_logged_through_the_chain(configure: Configure) -> None:
    buf = configure("json")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated: pass pwd={PASSCODE} differently", UserWarning, stacklevel=1)
    out = buf.getvalue()
    assert "deprecated: pass pwd=" in out
    assert_no_canary(out)


def test_context_helpers(configure: Configure) -> None:
    buf = configure("json")
    log = get_logger("t")
    bind_context(event_id="evt-1", appointment_id=None)  # None is skipped
    log.info("one")
    with bound_context(appointment_id="A-9"):
        log.info("two")
    log.info("three")
    unbind_context("event_id")
    log.info("four")
    bind_context(message_id="m-1")
    clear_context()
    log.info("five")
    lines = json_lines(buf.getvalue())
    assert lines[0]["event_id"] == "evt-1" and "appointment_id" not in lines[0]
    assert lines[1]["appointment_id"] == "A-9"
    assert "appointment_id" not in lines[2]
    assert "event_id" not in lines[3]
    assert "message_id" not in lines[4]


# --- Dramatiq -----------------------------------------------------------------------------


def _broker() -> StubBroker:
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


def test_middleware_binds_ids_by_actor_convention() -> None:
    broker = _broker()
    middleware = install_log_context(broker)
    assert broker.middleware[0] is middleware
    assert install_log_context(broker) is middleware  # idempotent

    def sync_meeting(appointment_id: str) -> None: ...
    def process_event(event_id: str) -> None: ...
    def deliver_notification(outbox_id: int) -> None: ...
    def reconcile_doctor(appointment_id: str) -> None: ...  # inferred from the signature
    def cleanup(batch: list[str]) -> None: ...

    for fn in (sync_meeting, process_event, deliver_notification, reconcile_doctor, cleanup):
        dramatiq.actor(broker=broker)(fn)

    cases: list[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any], dict[str, Any]]] = [
        (sync_meeting, ("A-1001",), {}, {"appointment_id": "A-1001", "clinic_id": "default"}),
        (sync_meeting, ("clinic-b/A-1001",), {}, {"appointment_id": "clinic-b/A-1001", "clinic_id": "clinic-b"}),
        (process_event, (), {"event_id": "evt-7f3c"}, {"event_id": "evt-7f3c", "clinic_id": "default"}),
        (deliver_notification, (42,), {}, {"outbox_id": 42}),  # a number names no clinic
        (reconcile_doctor, ("A-7",), {}, {"appointment_id": "A-7", "clinic_id": "default"}),
        (cleanup, (["x"],), {}, {}),
        (sync_meeting, ({"not": "an id"},), {}, {}),  # data instead of an id: not bound
    ]
    structlog.contextvars.bind_contextvars(worker="w1")  # the thread's own context
    try:
        for fn, args, kwargs, expected in cases:
            message = MessageProxy(broker.actors[fn.__name__].message_with_options(
                args=args, kwargs=kwargs, retries=2))
            middleware.before_process_message(broker, message)
            bound = structlog.contextvars.get_contextvars()
            assert bound == {"worker": "w1", "message_id": message.message_id,
                             "actor": fn.__name__, "queue": "default", "retries": 2, **expected}
            structlog.contextvars.bind_contextvars(zoom_meeting_id=1)  # bound by the actor
            if fn is cleanup:
                middleware.after_skip_message(broker, message)
            else:
                middleware.after_process_message(broker, message, exception=RuntimeError())
            assert structlog.contextvars.get_contextvars() == {"worker": "w1"}
    finally:
        structlog.contextvars.clear_contextvars()


def test_worker_end_to_end_logs_are_redacted_and_carry_message_ids(configure: Configure) -> None:
    buf = configure("json")
    broker = _broker()
    install_log_context(broker)
    seen: dict[str, dict[str, Any]] = {}

    def sync_meeting(appointment_id: str) -> None:
        seen[appointment_id] = structlog.contextvars.get_contextvars()
        bind_context(zoom_meeting_id=81234567890)  # must not survive this message
        get_logger("telemed.workers.meetings.sync").info("provisioning", start_url=START_URL)
        if appointment_id == "A-1001":
            _create_meeting()

    def leaky(payload: dict[str, str]) -> None:
        raise ZoomAPIError(f"could not notify {payload['email']}")

    dramatiq.actor(broker=broker, max_retries=0)(sync_meeting)
    dramatiq.actor(broker=broker, max_retries=0)(leaky)

    failing = broker.actors["sync_meeting"].send("A-1001")
    broker.actors["leaky"].send({"email": PATIENT_EMAIL, "passcode": PASSCODE,
                                 "start_url": START_URL})

    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        broker.join("default", fail_fast=False)
        ok = broker.actors["sync_meeting"].send("A-2002")
        broker.join("default", fail_fast=False)
        worker.join()
    finally:
        worker.stop()

    out = buf.getvalue()
    assert_no_canary(out)
    lines = json_lines(out)

    failure = next(line for line in lines if line["event"].startswith(
        "Failed to process message sync_meeting('A-1001')"))
    assert failure["logger"] == "dramatiq.worker.WorkerThread"
    assert failure["message_id"] == failing.message_id
    assert failure["actor"] == "sync_meeting"
    assert failure["queue"] == "default"
    assert failure["appointment_id"] == "A-1001"
    assert failure["zoom_meeting_id"] == 81234567890  # bound by the actor, same message
    assert "ZoomAPIError" in failure["exception"] and "[REDACTED]" in failure["exception"]

    leaky_line = next(line for line in lines if line["event"].startswith(
        "Failed to process message leaky("))
    assert leaky_line["actor"] == "leaky"

    provisioning = [line for line in lines if line["event"] == "provisioning"]
    assert [line["appointment_id"] for line in provisioning] == ["A-1001", "A-2002"]
    assert provisioning[1]["message_id"] == ok.message_id
    assert all(line["start_url"] == "[REDACTED]" for line in provisioning)
    # The single worker thread ran all three messages; nothing leaked between them.
    assert "zoom_meeting_id" not in seen["A-2002"]
    assert seen["A-2002"]["message_id"] == ok.message_id


def test_every_canary_fragment_is_exercised() -> None:
    # Guards the guard: the fragments the tests look for do occur in the inputs.
    inputs = " ".join([ACCESS_TOKEN, START_URL, JOIN_URL, PASSCODE, PATIENT_EMAIL, REFRESH_TOKEN,
                       FERNET_TOKEN, SMTP_URL, BEARER_TOKEN, BASIC_CRED, CLIENT_SECRET,
                       PATIENT_NAME])
    assert sum(fragment in inputs for fragment in SECRET_FRAGMENTS) >= 12


def test_log_context_middleware_is_a_dramatiq_middleware() -> None:
    assert issubclass(LogContextMiddleware, dramatiq.Middleware)


def test_default_stream_follows_sys_stderr(configure: Configure, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")  # no stream: whatever sys.stderr is at each record
    get_logger("t").info("to stderr", passcode=PASSCODE)
    swapped = io.StringIO()
    real, sys.stderr = sys.stderr, swapped
    try:
        get_logger("t").info("to the swapped stream")
    finally:
        sys.stderr = real
    assert "to stderr" in capsys.readouterr().err
    assert json_lines(swapped.getvalue())[0]["event"] == "to the swapped stream"
