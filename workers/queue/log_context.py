"""Dramatiq middleware: every log line written while a message runs names that message.

Binds ``message_id``, ``actor``, ``queue`` (and ``retries`` on a redelivery) into
structlog's contextvars before the actor runs, plus the id the actor works on:
``sync_meeting(appointment_id)``, ``process_event(event_id)``,
``deliver_notification(outbox_id)`` -- queue messages carry ids only (DESIGN 1), so the
first argument *is* the correlation id. When that id is a scoped key (an appointment's,
an event's, a doctor's: ``foundation.tenancy``), the clinic it belongs to is bound too, as
``clinic_id``; actors whose argument is a number (an outbox row, a Zoom receipt) bind
the clinic themselves once they have read it. Dramatiq's own lines ("Failed to process
message ...", "Retrying message ...") are logged through ``logging`` on the same thread
and pick the context up through ``telemed.logging``'s foreign chain.

Worker threads are reused for thousands of messages, so whatever was bound during a
message -- by us or by the actor -- is dropped when it ends, restoring the thread's
context from before the message.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import Broker, MessageProxy

from telemed.foundation.tenancy import clinic_of

__all__ = ["DEFAULT_ID_PARAMS", "ID_PARAM_NAMES", "KEY_PARAM_NAMES", "LogContextMiddleware", "install_log_context"]

# Actor name -> the name its (single) id argument is logged under.
DEFAULT_ID_PARAMS: Mapping[str, str] = {
    "sync_meeting": "appointment_id",
    "process_event": "event_id",
    "deliver_notification": "outbox_id",
    "process_zoom_webhook": "receipt_id",
}
# For actors not in the map: a first parameter with one of these names is bound too.
ID_PARAM_NAMES: frozenset[str] = frozenset({"appointment_id", "event_id", "outbox_id", "receipt_id"})
# Ids that are scoped keys, so they name their clinic.
KEY_PARAM_NAMES: frozenset[str] = frozenset({"appointment_id", "event_id", "doctor_id"})

_MAX_ID_LENGTH = 128  # event ids are at most 128 chars; anything longer is not an id


class LogContextMiddleware(dramatiq.Middleware):
    """Bind message identity into structlog contextvars for the duration of a message.

    Add it *first* in the broker's middleware list (see :func:`install_log_context`):
    Dramatiq runs ``before_*`` hooks in list order and ``after_*`` hooks in reverse, so
    the first middleware binds before any other one logs and unbinds after all of them
    (Retries' "Retrying message ..." included).
    """

    def __init__(self, id_params: Mapping[str, str] | None = None) -> None:
        self.id_params: dict[str, str] = {**DEFAULT_ID_PARAMS, **(id_params or {})}
        self._local = threading.local()
        self._inferred: dict[str, str | None] = {}

    # -- hooks ---------------------------------------------------------------------------

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        # What the thread had before this message (normally nothing), to restore after.
        self._local.saved = structlog.contextvars.get_contextvars()
        context: dict[str, Any] = {
            "message_id": message.message_id,
            "actor": message.actor_name,
            "queue": message.queue_name,
        }
        retries = message.options.get("retries")
        if retries:
            context["retries"] = retries
        id_name = self._id_param(broker, message.actor_name)
        if id_name is not None:
            value = self._id_value(message, id_name)
            if value is not None:
                context[id_name] = value
                if id_name in KEY_PARAM_NAMES and isinstance(value, str):
                    context["clinic_id"] = clinic_of(value)
        structlog.contextvars.bind_contextvars(**context)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self._restore()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        # A skipped message (SkipMessage, AgeLimit) gets this hook instead of the above.
        self._restore()

    # -- helpers -------------------------------------------------------------------------

    def _restore(self) -> None:
        saved: dict[str, Any] | None = getattr(self._local, "saved", None)
        # Clear everything, not just our keys: an actor's bind_context(zoom_meeting_id=...)
        # must not leak into the next message this thread runs.
        structlog.contextvars.clear_contextvars()
        if saved:
            structlog.contextvars.bind_contextvars(**saved)
        self._local.saved = None

    def _id_param(self, broker: Broker, actor_name: str) -> str | None:
        if actor_name in self.id_params:
            return self.id_params[actor_name]
        if actor_name not in self._inferred:
            # Cached per actor: signature inspection is slow next to a log call.
            self._inferred[actor_name] = self._infer_id_param(broker, actor_name)
        return self._inferred[actor_name]

    @staticmethod
    def _infer_id_param(broker: Broker, actor_name: str) -> str | None:
        try:
            fn = broker.get_actor(actor_name).fn
            params = list(inspect.signature(fn).parameters)
        except Exception:  # noqa: BLE001 - unknown actor, builtin, odd callable: no id
            return None
        return params[0] if params and params[0] in ID_PARAM_NAMES else None

    @staticmethod
    def _id_value(message: MessageProxy, id_name: str) -> str | int | None:
        kwargs = message.kwargs or {}
        if id_name in kwargs:
            value = kwargs[id_name]
        elif message.args:
            value = message.args[0]
        else:
            return None
        # Only something that looks like an id: a dict or a long string here means
        # someone queued data instead of ids, and it does not belong in every log line.
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        if isinstance(value, str) and len(value) > _MAX_ID_LENGTH:
            return None
        return value


def install_log_context(
    broker: Broker, id_params: Mapping[str, str] | None = None
) -> LogContextMiddleware:
    """Put a :class:`LogContextMiddleware` first in *broker*'s middleware; idempotent.

    Call it where the broker is built, before modules defining actors are imported.
    """
    for existing in broker.middleware:
        if isinstance(existing, LogContextMiddleware):
            return existing
    middleware = LogContextMiddleware(id_params)
    if broker.middleware:
        broker.add_middleware(middleware, before=type(broker.middleware[0]))
    else:
        broker.add_middleware(middleware)
    return middleware
