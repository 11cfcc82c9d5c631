"""The synchronous baseline for booking latency: what a clinic plugin does.

The booking request validates the event and creates the Zoom meeting inline before it
answers, as the KiviCare Telemed addon and similar plugins do; so the caller waits for
Zoom. Same contract, same validation (``events.parse_event``), same Zoom client, same
simulator as telemed. Run as ``python -m benchmarks.sync_baseline --port N`` with
``BENCH_ZOOM_API_URL`` and ``BENCH_ZOOM_TOKEN`` (a token minted by the simulator) set.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from datetime import UTC
from typing import Any

import uvicorn
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse

from telemed.events import InvalidEvent, parse_event
from telemed.zoom.client import ZoomClient
from telemed.zoom.tokens import StaticTokenProvider

app = FastAPI(title="synchronous booking baseline")
_local = threading.local()


def _zoom() -> ZoomClient:
    # One client (and connection) per server thread, like one plugin worker each.
    client = getattr(_local, "client", None)
    if client is None:
        client = ZoomClient(os.environ["BENCH_ZOOM_API_URL"], StaticTokenProvider(os.environ["BENCH_ZOOM_TOKEN"]),
                            timeout=30)
        _local.client = client
    return client


@app.post("/v1/events", status_code=201)
def book(event: dict[str, Any] = Body(...)) -> Any:
    try:
        parsed = parse_event(event)
    except InvalidEvent as exc:
        return JSONResponse({"errors": exc.errors}, status_code=422)
    appointment = parsed.appointment
    start = appointment.start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[union-attr]
    created = _zoom().create_meeting(appointment.doctor.zoom_user or appointment.doctor.email, {
        "topic": "Video appointment", "type": 2, "start_time": start,
        "duration": appointment.duration_minutes, "timezone": appointment.timezone,
        "settings": {"waiting_room": True, "join_before_host": False},
    })
    return {"event_id": parsed.event_id, "meeting_id": created["id"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_baseline")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
