"""A booking system posting events to ``POST /v1/events`` over real HTTP, signed afresh
for every attempt, from a few threads at once; a 503 or a dropped connection is retried
like the contract says, anything else unexpected is recorded and fails the run."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from telemed.events import signing


@dataclass
class PostLog:
    statuses: Counter[str] = field(default_factory=Counter)  # "202 accepted", "202 duplicate", "503", ...
    accepted: set[str] = field(default_factory=set)  # event ids answered 202
    failures: list[str] = field(default_factory=list)  # what never got a 202
    responses: list[str] = field(default_factory=list)  # every body the booking system received
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_all(url: str, secret: str, events: Sequence[dict[str, Any]], *, threads: int = 4,
             per_second: float | None = None, on_progress: Callable[[int], None] | None = None,
             attempts: int = 8) -> PostLog:
    """Post every event (in order, ``threads`` at a time, at most ``per_second``);
    ``on_progress(done)`` after each."""
    log = PostLog()
    done = 0
    client = httpx.Client(timeout=30)
    began = time.monotonic()

    def post(numbered: tuple[int, dict[str, Any]]) -> None:
        nonlocal done
        index, event = numbered
        if per_second:
            time.sleep(max(0.0, began + index / per_second - time.monotonic()))
        body = json.dumps(event).encode()
        outcome = "no answer"
        for attempt in range(attempts):
            signed = signing.sign(secret, body)  # a repeat in the same second is a duplicate too
            try:
                response = client.post(f"{url}/v1/events", content=body, headers=signed.headers)
            except httpx.TransportError as exc:
                outcome = type(exc).__name__
            else:
                with log.lock:
                    log.responses.append(response.text)
                    if response.status_code != 202:
                        log.statuses[str(response.status_code)] += 1
                if response.status_code == 202:
                    outcome = "202"
                    with log.lock:
                        log.statuses[f"202 {response.json()['status']}"] += 1
                        log.accepted.add(event["event_id"])
                    break
                outcome = f"{response.status_code} {response.text[:200]}"
                if response.status_code != 503:
                    break  # a client error: retrying the same bytes cannot help
            with log.lock:
                log.retries += 1
            time.sleep(min(0.2 * 2 ** attempt, 3.0))
        if outcome != "202":
            with log.lock:
                log.failures.append(f"{event['event_id']}: {outcome}")
        with log.lock:
            done += 1
            current = done
        if on_progress is not None:
            on_progress(current)

    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="booking-system") as pool:
            # In order, a few in flight: the delivery order of the plan mostly holds.
            list(pool.map(post, enumerate(events)))
    finally:
        client.close()
    return log
