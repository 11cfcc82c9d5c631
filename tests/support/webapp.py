"""The web app wired for tests: real store and Redis, a recording enqueue, real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from cryptography.fernet import Fernet

from telemed.events.publish import Publisher
from telemed.settings import Settings, default_profile, load_settings
from telemed.store.clinic_directory import StoreDirectory
from telemed.store.db import Database
from telemed.web.app import create_app
from telemed.web.services import WebServices
from tests.support.webserver import serve

INGRESS_SECRET = "telemed-test-ingress-secret"
ZOOM_SECRET_TOKEN = "zoom-test-secret-token"
QUEUE_OF = {"process_event": "events", "process_zoom_webhook": "events", "sync_meeting": "meetings",
            "deliver_notification": "notifications"}


@dataclass
class Recorder:
    """Stands in for the broker: remembers what was queued (and may forward it)."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    clinics: list[str | None] = field(default_factory=list)  # the clinic each call named (None: none)
    forward: Callable[..., None] | None = None

    def __call__(self, actor_name: str, *args: Any, clinic: str | None = None) -> None:
        self.calls.append((actor_name, args))
        self.clinics.append(clinic)
        if self.forward is not None:
            self.forward(actor_name, *args, **({"clinic": clinic} if clinic is not None else {}))


def settings_for(namespace: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_namespace": namespace, "ingress_secret": INGRESS_SECRET,
        "zoom_webhook_secret_token": ZOOM_SECRET_TOKEN, "secret_keys": Fernet.generate_key().decode(),
    }
    values.update(overrides)
    return load_settings(**values)


def web_services(settings: Settings, database: Database, client: redis.Redis,
                 recorder: Recorder | None = None) -> WebServices:
    recorder = recorder or Recorder()
    publisher = Publisher(database=database, enqueue=lambda event_id: recorder("process_event", event_id),
                          check_queue=lambda: client.ping() and None)
    return WebServices(settings=settings, database=database, redis=client, publisher=publisher, enqueue=recorder,
                       clinics=clinic_directory(settings, database))


def clinic_directory(settings: Settings, database: Database) -> StoreDirectory:
    """The clinics as ``telemed.bootstrap`` wires them: the store's, the default one from ``settings``."""
    return StoreDirectory(database, default_profile(settings))


@contextmanager
def running_app(services: WebServices) -> Iterator[str]:
    with serve(create_app(services)) as url:
        yield url


def broker_forwarder(redis_url: str, namespace: str) -> Callable[..., None]:
    """Enqueue by actor name on a real Redis broker (for a real worker process)."""
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.message import Message

    broker = RedisBroker(url=redis_url, namespace=namespace)

    def forward(actor_name: str, *args: Any, clinic: str | None = None) -> None:
        # Straight onto the queue, as a deployment without the clinic gate queues: the
        # clinic is the gate's business only (workers.queue.clinic_gate).
        broker.enqueue(Message(queue_name=QUEUE_OF[actor_name], actor_name=actor_name, args=args,
                               kwargs={}, options={}))

    return forward
