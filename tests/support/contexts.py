"""Worker contexts and databases for tests that run pipeline code in their own process."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import redis
from dramatiq.brokers.stub import StubBroker

from telemed.foundation.cipher import Cipher
from telemed.foundation.tenancy import ClinicDirectory, ClinicProfile, StaticDirectory
from telemed.settings import Settings, default_profile
from telemed.store.clinic_directory import StoreDirectory
from telemed.store.db import Database
from telemed.workers.context import WorkerContext
from telemed.workers.queue.work_queue import WorkQueue

NO_REDIS = "redis://127.0.0.1:1/0"


def cipher_database(url: str, keys: Sequence[str], **options: object) -> Database:
    """A database whose encrypted columns use ``keys`` (newest first)."""
    return Database(url, cipher=Cipher(keys), **options)  # type: ignore[arg-type]


def clinics_of(settings: Settings, *others: ClinicProfile) -> ClinicDirectory:
    """The default clinic (from ``settings``) and ``others``."""
    return StaticDirectory([default_profile(settings), *others])


def worker_context(settings: Settings, database: Database | None = None,
                   queue: WorkQueue | None = None, clinics: ClinicDirectory | None = None) -> WorkerContext:
    """The pipeline's parts as a worker process has them; work it queues goes to ``queue``
    (by default a stub broker's in-memory queues: nothing runs it). Its clinics are the
    store's (``clinics``: another directory), the default one from ``settings``."""
    stub = StubBroker()
    stub.emit_after("process_boot")
    # Without a Redis URL the test needs no Redis: an address where nothing answers makes
    # any use of it fail loudly instead of reaching a Redis the test did not choose.
    ctx = WorkerContext(settings=settings, keys=settings.fernet_keys,
                        redis_connect=functools.partial(redis.Redis.from_url, settings.redis_url or NO_REDIS),
                        queue=queue or WorkQueue(stub),
                        clinics=clinics or StoreDirectory(lambda: ctx.database, default_profile(settings)))
    if database is not None:
        ctx.database = database  # type: ignore[misc]  # share the test's engine
    return ctx
