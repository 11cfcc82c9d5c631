"""uvicorn's real access log: no secret-bearing part of a request target is written, in any encoding."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import redis

from telemed.foundation import connect_links, start_tokens
from telemed.logging import configure_logging, reset_logging
from telemed.store.db import Database
from telemed.web.app import create_app
from tests.support.encodings import encoded, fully_decoded
from tests.support.webapp import settings_for, web_services
from tests.support.webserver import serve

pytestmark = pytest.mark.integration




def _get(url: str, target: str) -> None:
    """One raw request: the target exactly as given (an HTTP client would normalise it)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: telemed\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("json", "INFO", buffer, capture_uncaught=False)
    yield buffer
    reset_logging()


def test_tokens_never_reach_the_access_log(database: Database, redis_client: redis.Redis, redis_namespace: str,
                                           log_buffer: io.StringIO) -> None:
    settings = settings_for(redis_namespace)
    keys = settings.fernet_keys
    start = start_tokens.issue(keys, appointment_id="A-CANARY", doctor_id="D-1",
                               expires_at=datetime.now(UTC) + timedelta(days=1))
    connect = connect_links.make_connect_token(keys, "D-1", timedelta(days=1))
    plain = "CANARYaccessLogToken0123456789"  # no token shape at all
    targets = []
    for token in (start, plain):
        targets += [
            f"/start/{token}",
            f"/start/%65{token[1:]}",  # the reported one: "%65yJ..."
            f"/start/{encoded(token)}",
            f"/start/{encoded(token, 2)}",
            f"/start%2F{token}",
            f"/%73TaRt%2f{token}",
            f"/{encoded('start', 2)}%252F{encoded(token, 2)}",
            f"/start/{token}?page=1",
        ]
    for token in (connect, plain):
        targets += [
            f"/oauth/zoom/connect?token={token}",
            f"/oauth/zoom/connect?%74oken={encoded(token)}",
            f"/oauth/zoom/connect?token%3D{token}",
            f"/oauth/zoom/callback?code={token}&state={token}",
        ]
    with serve(create_app(web_services(settings, database, redis_client)), access_log=True) as url:
        for target in targets:
            _get(url, target)
    log = log_buffer.getvalue()
    access_lines = [line for line in log.splitlines() if '"uvicorn.access"' in line]
    assert len(access_lines) == len(targets), log  # every request was logged, none dropped
    assert "start/[REDACTED]" in log and "connect?[REDACTED]" in log
    assert "positional_args" not in log  # the raw arguments are never rendered
    decoded = fully_decoded(log)
    for secret in (start, connect, plain, start.split(".")[-1], connect.split(".")[-1]):
        assert secret not in decoded, f"a token reached the access log: {log}"
