"""What the HTTP app needs, injected by the composition root (``telemed.runtime``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from events.publish import Publisher
from store.db import Database
from telemed.settings import Settings

Enqueue = Callable[..., None]  # enqueue(actor_name, *args): ids only


@dataclass
class WebServices:
    settings: Settings
    database: Database
    redis: redis.Redis
    publisher: Publisher
    enqueue: Enqueue
    # Built lazily by the composition root: a Zoom client for a given doctor, choosing the
    # doctor's own token or the account token (see the Zoom adapter).
    zoom_for_doctor: Callable[[str], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
