"""Wiring: turns settings into the parts (store, broker, publisher) a process needs."""

from __future__ import annotations

from typing import cast

import redis
from dramatiq.brokers.redis import RedisBroker

from events.publish import Publisher
from store.crypto import configure_cipher
from store.db import Database
from telemed.settings import Settings, get_settings


def build_database(settings: Settings | None = None) -> Database:
    settings = settings or get_settings()
    configure_cipher(settings.fernet_keys)
    return Database(settings.resolved_database_url)


def build_publisher(settings: Settings | None = None, database: Database | None = None) -> Publisher:
    """A publisher that queues ``process_event`` on the configured broker."""
    settings = settings or get_settings()
    from workers import actors  # installs the broker from settings on first import

    client = cast(RedisBroker, actors.broker).client

    def check_queue() -> None:
        client.ping()

    return Publisher(
        database=database or build_database(settings),
        enqueue=lambda event_id: actors.process_event.send(event_id),
        check_queue=check_queue,
    )


def redis_client(settings: Settings | None = None) -> redis.Redis:
    from workers.broker import redis_url_for

    return redis.Redis.from_url(redis_url_for(settings or get_settings()))


def build_web_services(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """Everything the HTTP app needs, wired from settings."""
    from dramatiq.message import Message

    from web.services import WebServices
    from workers import actors

    settings = settings or get_settings()
    database = build_database(settings)
    broker = actors.broker

    def enqueue(actor_name: str, *args: object) -> None:
        actor = broker.get_actor(actor_name)
        broker.enqueue(Message(queue_name=actor.queue_name, actor_name=actor_name, args=args,
                               kwargs={}, options={}))

    # Start links and the access API mint fresh start_urls with the workers' Zoom wiring
    # (workers.start_urls.zoom_for_doctor is the one place that picks the client).
    from workers.context import WorkerContext
    from workers.start_urls import fetch_start_url

    zoom_context = WorkerContext(settings)
    zoom_context.database = database  # type: ignore[misc]  # share the engine

    return WebServices(
        settings=settings, database=database, redis=cast(RedisBroker, broker).client,
        publisher=build_publisher(settings, database), enqueue=enqueue,
        start_url_fetcher=lambda appointment_id: fetch_start_url(zoom_context, appointment_id),
    )
