"""The one wiring point: settings in, the parts a process needs out.

Every process (``telemed web``, each worker process, the scheduler, the CLI, the demo)
builds its parts here from one ``Settings`` (``telemed.settings.get_settings``): the
database with its cipher, Redis (starting the embedded server when no URL is set), the
broker with the actors declared on it, the work queue, the worker context, the
publisher and the web's services. Lower packages receive what they need through
constructors; none of them reads the environment or connects at import
(docs/architecture.md, "Wiring").
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.sentinel import Sentinel

from telemed import selfcheck
from telemed.events.publish import Publisher
from telemed.foundation.cipher import Cipher
from telemed.foundation.tenancy import ClinicDirectory
from telemed.settings import Settings, default_profile, get_settings
from telemed.store.clinic_directory import StoreDirectory
from telemed.store.db import Database
from telemed.web.services import WebServices
from telemed.workers.actors import Actors, declare_actors
from telemed.workers.context import WorkerContext
from telemed.workers.hosting.start_urls import fetch_start_url
from telemed.workers.queue.broker import WorkerThreads, build_broker
from telemed.workers.queue.embedded_redis import EmbeddedRedisServer, answers, port_is_free
from telemed.workers.queue.metrics_middleware import serve_worker_metrics
from telemed.workers.queue.work_queue import WorkQueue

# The embedded Redis-protocol server this process started, if any: it lives as long as
# the process (the demo, ``telemed run``, or the first process that needed it).
_embedded: EmbeddedRedisServer | None = None


def redis_url(settings: Settings) -> str:
    """TELEMED_REDIS_URL, or the embedded server (started here if nobody runs it yet).

    With Sentinels there is no one URL: use ``redis_connect``."""
    if settings.redis_sentinels:
        raise ValueError("with TELEMED_REDIS_SENTINELS the primary moves: connect through redis_connect")
    if settings.redis_url:
        return settings.redis_url
    return ensure_embedded_redis(settings.embedded_redis_port)


def ensure_embedded_redis(port: int, host: str = "127.0.0.1") -> str:
    global _embedded
    url = f"redis://{host}:{port}/0"
    if _embedded is not None or answers(url):
        return url
    if not port_is_free(host, port):
        raise RuntimeError(f"port {port} is taken by something that is not Redis; set TELEMED_EMBEDDED_REDIS_PORT")
    _embedded = EmbeddedRedisServer.start(host=host, port=port)
    return url


RedisConnect = Callable[[], redis.Redis]


def redis_connect(settings: Settings) -> RedisConnect:
    """Makes clients of the current Redis primary: every Redis user gets its client here.

    With TELEMED_REDIS_SENTINELS the clients ask the Sentinels where the primary of
    TELEMED_REDIS_MASTER_NAME is, and ask again after a connection fails or the server
    they reach answers as a replica (redis-py's ``Sentinel``): they follow a failover.
    Otherwise they connect to ``redis_url(settings)``. Either way a read waits at most
    TELEMED_REDIS_SOCKET_TIMEOUT_SECONDS, so a host cut off from Redis fails its calls
    (and retries them) instead of hanging.
    """
    timeouts: dict[str, Any] = {"socket_timeout": settings.redis_socket_timeout_seconds,
                                "socket_connect_timeout": min(5.0, settings.redis_socket_timeout_seconds),
                                "socket_keepalive": True, "health_check_interval": 30}
    if not settings.redis_sentinels:
        url = redis_url(settings)
        return functools.partial(redis.Redis.from_url, url, **timeouts)
    tls: dict[str, Any] = {"ssl": True, "ssl_min_version": ssl.TLSVersion.TLSv1_2} if settings.redis_tls else {}
    sentinel_password = settings.redis_sentinel_password
    sentinel = Sentinel(
        settings.redis_sentinel_addresses,
        sentinel_kwargs={**timeouts, **tls,
                         "password": sentinel_password.get_secret_value() if sentinel_password else None},
        **timeouts, **tls,
        password=settings.redis_password.get_secret_value() if settings.redis_password else None,
    )
    return functools.partial(sentinel.master_for, settings.redis_master_name)


def redis_client(settings: Settings) -> redis.Redis:
    return redis_connect(settings)()


def database(settings: Settings, **engine_options: Any) -> Database:
    return Database(settings.resolved_database_url, cipher=Cipher(settings.fernet_keys), **engine_options)


def broker(settings: Settings) -> RedisBroker:
    forks: list[Any] = []
    if settings.worker_metrics_port:
        forks.append(serve_metrics_fork)
    return build_broker(redis_client(settings), settings.redis_namespace, metrics_forks=forks,
                        clinic_in_flight=settings.clinic_in_flight,
                        clinic_lease_seconds=settings.clinic_lease_seconds)


def serve_metrics_fork() -> None:
    """Dramatiq starts this in a fork process of ``telemed worker`` (by its import path)."""
    settings = get_settings()
    assert settings.worker_metrics_port is not None
    serve_worker_metrics(settings.worker_metrics_port, settings.metrics_bind)


def clinic_directory(settings: Settings, db: Database | Callable[[], Database]) -> StoreDirectory:
    """Every clinic's profile: the default one from the environment, the others from the
    store (cached a few seconds; store.clinic_directory). One per process."""
    return StoreDirectory(db, default_profile(settings))


def worker_context(settings: Settings, queue: WorkQueue, clinics: ClinicDirectory | None = None) -> WorkerContext:
    """The pipeline's parts in this process. Without ``clinics``, its directory reads the
    context's own database (built on first use, after fork)."""
    context: WorkerContext | None = None

    def context_database() -> Database:
        assert context is not None
        return context.database

    context = WorkerContext(settings=settings, keys=settings.fernet_keys, redis_connect=redis_connect(settings),
                            queue=queue, clinics=clinics or clinic_directory(settings, context_database))
    return context


@dataclass
class Pipeline:
    """The worker side of one process: broker, actors, queue and (built on first use) context."""

    settings: Settings
    broker: dramatiq.Broker
    queue: WorkQueue
    actors: Actors = field(init=False)
    threads: int = field(default=8, init=False)
    _context: WorkerContext | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.actors = declare_actors(self.broker, self.context)
        self.broker.add_middleware(WorkerThreads(self._worker_threads))

    def _worker_threads(self, threads: int) -> None:
        self.threads = threads

    def context(self) -> WorkerContext:
        if self._context is None:
            self._context = worker_context(self.settings, self.queue)
            self._context.threads = self.threads
        return self._context


def pipeline(settings: Settings) -> Pipeline:
    built = broker(settings)
    return Pipeline(settings, built, WorkQueue(built))


def publisher(settings: Settings, db: Database | None = None, queue: WorkQueue | None = None) -> Publisher:
    """A publisher that queues ``process_event`` on the configured broker."""
    queue = queue or WorkQueue(broker(settings))
    client = queue.broker.client  # type: ignore[attr-defined]

    def check_queue() -> None:
        client.ping()

    return Publisher(database=db or database(settings), enqueue=queue.process_event, check_queue=check_queue)


def default_publisher() -> Publisher:
    """``events.publish``'s publisher when none was configured (entry point ``telemed.wiring``)."""
    return publisher(get_settings())


def web_services(settings: Settings) -> WebServices:
    """Everything the HTTP app needs. The web never declares actors: it queues by name."""
    db = database(settings)
    queue = WorkQueue(broker(settings))
    clinics = clinic_directory(settings, db)
    # Start links and the access API mint fresh start_urls with the workers' Zoom wiring
    # (workers.hosting.start_urls picks the client), sharing the web's engine and directory.
    zoom_context = worker_context(settings, queue, clinics)
    zoom_context.database = db  # type: ignore[misc]
    client = queue.broker.client  # type: ignore[attr-defined]
    return WebServices(
        settings=settings, database=db, redis=client,
        publisher=publisher(settings, db, queue), enqueue=queue.send, clinics=clinics,
        start_url_fetcher=functools.partial(fetch_start_url, zoom_context),
        self_check=selfcheck.readiness(settings, client, db),
    )


