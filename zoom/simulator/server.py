"""A local Zoom: a real threaded HTTP server over the simulator's state and routes.

Tests, the demo and ``telemed zoom-sim`` talk to it over HTTP exactly as to Zoom, with
``TELEMED_ZOOM_API_URL`` / ``TELEMED_ZOOM_OAUTH_URL`` pointed at :attr:`api_url` and
:attr:`oauth_url`. Plain HTTP is fine here: the settings accept it for loopback only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from zoom.simulator.routes import dispatch
from zoom.simulator.state import Credentials, Fault, SimState
from zoom.simulator.wire import SimRequest, SimResponse

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"
DEFAULT_ACCOUNT_ID = "sim-account-id"
DEFAULT_HOST_EMAIL = "host@sim.example"


class ZoomSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_seconds: float = 0.0,
        token_lifetime_seconds: float = 3600,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        account_id: str = DEFAULT_ACCOUNT_ID,
        default_host_email: str = DEFAULT_HOST_EMAIL,
        daily_limit: int | None = None,
    ) -> None:
        self.host = host
        self.latency_seconds = latency_seconds
        self.state = SimState(
            credentials=Credentials(client_id, client_secret, account_id),
            token_lifetime_seconds=token_lifetime_seconds,
            default_host_email=default_host_email,
            daily_limit=daily_limit,
        )
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server((self.host, self._requested_port), _handler_for(self))
        self._server = server
        # A short poll interval keeps stop() quick (the default makes it take ~0.5 s).
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="zoom-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        # A wildcard bind is reachable on loopback; the URL must name a concrete address.
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    @property
    def oauth_url(self) -> str:
        return self.base_url + "/oauth"

    # Inspection and control, for tests and the demo -------------------------------------

    @property
    def client_id(self) -> str:
        return self.state.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self.state.credentials.client_secret

    @property
    def account_id(self) -> str:
        return self.state.credentials.account_id

    @property
    def daily_limit(self) -> int | None:
        """Create/update calls per host per UTC day (None: unlimited)."""
        return self.state.daily_limit

    @daily_limit.setter
    def daily_limit(self, value: int | None) -> None:
        self.state.daily_limit = value

    @property
    def grants(self) -> int:
        """Access tokens handed out by ``/oauth/token`` (and :meth:`issue_token`)."""
        return self.state.grants

    def meetings(self, *, include_deleted: bool = True) -> list[dict[str, Any]]:
        """Every meeting ever created: ``{id, host, created, deleted, instant_conversion, meeting}``."""
        views = self.state.meeting_views()
        return views if include_deleted else [v for v in views if not v["deleted"]]

    def secrets_handed_out(self) -> set[str]:
        """Every access token, start link, ZAK, join link and passcode this simulator gave out."""
        return self.state.secrets_handed_out()

    def requests(
        self, *, method: str | None = None, path_prefix: str | None = None
    ) -> list[dict[str, Any]]:
        """The request log: ``{method, path, query, json, form, status}`` in arrival order."""
        return [
            entry
            for entry in self.state.request_log()
            if (method is None or entry["method"] == method.upper())
            and (path_prefix is None or entry["path"].startswith(path_prefix))
        ]

    def reset(self) -> None:
        self.state.reset()

    def issue_token(self) -> str:
        """Mint a valid access token without the OAuth round trip."""
        return self.state.issue_token()

    def expire_tokens(self) -> None:
        """Every token handed out so far now gets 401 / code 124."""
        self.state.expire_tokens()

    def revoke_token(self, token: str) -> None:
        self.state.revoke_token(token)

    def lock_setting(self, name: str, value: Any) -> None:
        """Like an account-level lock: this setting wins over whatever a request asks."""
        self.state.lock_setting(name, value)

    def inject_failure(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        count: int = 1,
        method: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with this response instead."""
        self.state.add_fault(Fault(status, body, dict(headers or {}), count, method, path_prefix))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 drops connection attempts from bursts of clients,
    # which then stall for a full second in TCP's SYN retry.
    request_queue_size = 128


def _handler_for(sim: ZoomSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(_SimHandler):
        simulator = sim

    return Handler


class _SimHandler(BaseHTTPRequestHandler):
    simulator: ZoomSimulator
    protocol_version = "HTTP/1.1"  # keep-alive, like Zoom; every answer sets its length
    timeout = 30  # idle keep-alive connections must not hold threads forever
    server_version = "ZoomSimulator/1.0"
    # Headers and body leave in one segment: otherwise Nagle's algorithm and delayed ACKs
    # add ~40 ms to every keep-alive request.
    wbufsize = -1
    disable_nagle_algorithm = True

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
        )
        content_type = self.headers.get("Content-Type", "")
        if raw and "application/x-www-form-urlencoded" in content_type:
            request.form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        elif raw:
            try:
                request.json = json.loads(raw)
            except ValueError:
                request.json = _INVALID_JSON
        if sim.latency_seconds > 0 and not parts.path.startswith("/_sim/"):
            time.sleep(sim.latency_seconds)
        if request.json is _INVALID_JSON:
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
        if not parts.path.startswith("/_sim/"):
            sim.state.record(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "json": request.json,
                    "form": request.form,
                    "status": response.status,
                    "at": time.time(),
                }
            )
        self._send(response)

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


_INVALID_JSON = object()
