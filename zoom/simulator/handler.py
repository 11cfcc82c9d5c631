"""The simulator's HTTP plumbing: parse a request, apply injected faults, send the answer.

Faults that are about the connection rather than the answer live here: a reset (RST)
before anything happens, a request held until the client gives up, and a "drop" that
does the real work (the meeting IS created) and then resets instead of answering, which
is what a client sees when a proxy or the network loses Zoom's reply.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from telemed.zoom.simulator.limits import LIGHT, qps_limited
from telemed.zoom.simulator.routes import dispatch
from telemed.zoom.simulator.wire import SimRequest, SimResponse

if TYPE_CHECKING:
    from telemed.zoom.simulator.server import ZoomSimulator

logger = logging.getLogger("telemed.zoom.simulator")

MAX_BODY_BYTES = 1 << 20
_INVALID_JSON = object()


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 drops connection attempts from bursts of clients,
    # which then stall for a full second in TCP's SYN retry.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up while its keep-alive connection waits for the next
        # request (a worker stopping) is normal; socketserver would print a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def handler_for(sim: ZoomSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(SimHandler):
        simulator = sim

    return Handler


class SimHandler(BaseHTTPRequestHandler):
    simulator: ZoomSimulator
    protocol_version = "HTTP/1.1"  # keep-alive, like Zoom; every answer sets its length
    timeout = 30  # idle keep-alive connections must not hold threads forever
    server_version = "ZoomSimulator/1.0"
    # Headers and body leave in one segment: otherwise Nagle's algorithm and delayed ACKs
    # add ~40 ms to every keep-alive request.
    wbufsize = -1
    disable_nagle_algorithm = True

    def parse_request(self) -> bool:
        # The request line has just come in: its arrival, before any of our own parsing.
        self._arrived, self._arrived_wall = time.monotonic(), time.time()
        return bool(super().parse_request())

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet by default: the request log is the record, and stderr noise hides failures.
        return None

    def _serve(self) -> None:
        sim = self.simulator
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(
                SimResponse(413, {"code": 413, "message": "Request body too large."}), close=True
            )
            return
        raw = self.rfile.read(length) if length else b""
        request = SimRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            base_url=sim.base_url,
            arrived=self._arrived,
        )
        content_type = self.headers.get("Content-Type", "")
        if raw and "application/x-www-form-urlencoded" in content_type:
            request.form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        elif raw:
            try:
                request.json = json.loads(raw)
            except ValueError:
                request.json = _INVALID_JSON
        admin = parts.path.startswith("/_sim/")
        fault, canned = self._fault_for(request) if not admin else (None, None)
        if not admin:
            delay = sim.latency_seconds + (sim.state.chaos.delay() if sim.state.chaos else 0.0)
            if delay > 0:
                time.sleep(delay)
        if fault in {"reset", "timeout"}:
            self._record(request, 0, fault)
            if fault == "timeout":
                sim.stopping.wait(self._timeout_seconds())
            self._reset()
            return
        if canned is not None:
            response = canned
        elif request.json is _INVALID_JSON:
            response = SimResponse(
                400, {"code": 300, "message": "Request Body should be a valid JSON object."}
            )
            request.json = None
        else:
            try:
                response = dispatch(sim.state, request)
            except Exception:
                # A simulator bug (or a malformed admin call) still gets an HTTP answer,
                # shaped like Zoom's, instead of a dropped connection.
                logger.exception("zoom simulator failed on %s %s", request.method, parts.path)
                response = SimResponse(500, {"code": 500, "message": "Simulator error."})
        if not admin:
            self._record(request, response.status, fault)
        if fault == "drop":
            self._reset()
            return
        self._send(response)

    def _fault_for(self, request: SimRequest) -> tuple[str | None, SimResponse | None]:
        """(connection fault or None, canned answer or None) for this request."""
        state = self.simulator.state
        scripted = state.take_fault(request.method, request.path)
        if scripted is not None:
            state.count(f"fault.{scripted.action}")
            if scripted.action == "respond":
                return "respond", SimResponse(
                    scripted.status, scripted.body, dict(scripted.headers)
                )
            return scripted.action, None
        chaos = state.chaos
        drawn = chaos.draw(request.method, request.path) if chaos is not None else None
        if drawn is None:
            return None, None
        state.count(f"fault.{drawn.split(':')[0]}")
        if drawn.startswith("error:"):
            status = int(drawn.split(":")[1])
            return "error", SimResponse(
                status, {"code": status, "message": "Internal server error, please try again."}
            )
        if drawn == "rate_limit":
            category = "Medium" if request.method == "POST" else LIGHT
            return "rate_limit", qps_limited(category)
        return drawn, None

    def _timeout_seconds(self) -> float:
        chaos = self.simulator.state.chaos
        return chaos.timeout_seconds if chaos is not None else 30.0

    def _record(self, request: SimRequest, status: int, fault: str | None) -> None:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "json": None if request.json is _INVALID_JSON else request.json,
            "form": _without_secrets(request.form),
            "status": status,
            "at": time.time(),  # when answered
            "arrived": self._arrived_wall,  # when its request line came in
        }
        if request.token_user:
            entry["user"] = request.token_user  # whose own token was used (an email, no secret)
        if fault is not None:
            entry["fault"] = fault
        self.simulator.state.record(entry)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST: the client sees 'connection reset'."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the connection was reset on purpose
            super().finish()

    def _send(self, response: SimResponse, close: bool = False) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if response.status != 204 and payload:
            self.wfile.write(payload)


def _without_secrets(form: dict[str, str]) -> dict[str, str]:
    # Codes, refresh tokens and PKCE verifiers are credentials: the log names, not values.
    hidden = {"code", "refresh_token", "code_verifier"}
    return {k: ("<hidden>" if k in hidden else v) for k, v in form.items()}
