"""``telemed check`` and ``/readyz``: is this host's configuration a working deployment?

Pointed at a deployment's settings, it checks Redis (reachable, and the server we write
to is a primary; with Sentinels, which of them answer and whom they name), the database
(answers, migrations at head), the clocks (this host's against Redis's and the
database's), Zoom (a token grant with the account app's credentials) and the mail server
(a login). Every finding is one line of words (``foundation.self_check.Finding``); no
URL, password or token is ever printed.

``/readyz`` runs the same checks (``readiness``): the cheap ones on every call, the ones
that cost a third party a request (Zoom, SMTP) or build an engine (migrations) at most
once a minute per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import redis

from telemed.foundation.self_check import Finding, measure_offset, skew_finding
from telemed.foundation.settings import Settings
from telemed.store.db import Database
from telemed.store.migrate import current_revision, head_revisions
from telemed.workers.notifier.errors import DeliveryError
from telemed.workers.notifier.mail import SmtpChannel
from telemed.zoom.errors import ZoomError
from telemed.zoom.oauth import request_token

SLOW_CHECKS_EVERY_SECONDS = 60.0


def _down(exc: BaseException) -> str:
    return f"down ({type(exc).__name__})"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def redis_where(settings: Settings) -> str:
    """Where Redis is, for people: host and port only (a URL may carry a password)."""
    if settings.redis_sentinels:
        return f"the primary {settings.redis_master_name!r} named by the Sentinels at {settings.redis_sentinels}"
    if not settings.redis_url:
        return f"the embedded server on 127.0.0.1:{settings.embedded_redis_port}"
    parts = urlsplit(settings.redis_url)
    return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else "the Unix socket"


def check_redis(settings: Settings, client: redis.Redis) -> Finding:
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001  (any failure is the finding)
        return Finding("redis", False, f"{_down(exc)}: no answer from {redis_where(settings)}")
    try:
        role = client.info("replication").get("role")
    except redis.ResponseError:  # the embedded server keeps no replication state
        return Finding("redis", True, "ok")
    if role != "master":
        return Finding("redis", False, f"{redis_where(settings)} answers as a {role}, not a primary: writes "
                                       "fail. Point TELEMED_REDIS_URL at the primary, or use TELEMED_REDIS_SENTINELS")
    return Finding("redis", True, "ok")


def check_sentinels(settings: Settings) -> Finding | None:
    """Each Sentinel answers and names the same primary (None without Sentinels)."""
    if not settings.redis_sentinels:
        return None
    password = settings.redis_sentinel_password.get_secret_value() if settings.redis_sentinel_password else None
    named: dict[str, str] = {}
    silent = []
    for host, port in settings.redis_sentinel_addresses:
        sentinel = redis.Redis(host, port, password=password, ssl=settings.redis_tls, socket_timeout=3,
                               socket_connect_timeout=3)
        try:
            address = sentinel.sentinel_get_master_addr_by_name(settings.redis_master_name)
        except Exception as exc:  # noqa: BLE001
            silent.append(f"{host}:{port} ({type(exc).__name__})")
            continue
        finally:
            sentinel.close()
        if isinstance(address, tuple):
            named[f"{host}:{port}"] = f"{_text(address[0])}:{address[1]}"
        else:
            named[f"{host}:{port}"] = "nothing"
    primaries = set(named.values())
    total = len(settings.redis_sentinel_addresses)
    if not named:
        return Finding("sentinels", False, f"none of the {total} Sentinels answers: {', '.join(silent)}")
    if len(primaries) > 1 or "nothing" in primaries:
        return Finding("sentinels", False, f"the Sentinels disagree on {settings.redis_master_name!r}: "
                                           + ", ".join(f"{s} names {p}" for s, p in named.items()))
    detail = f"{len(named)} of {total} answer; primary {primaries.pop()}"
    if silent:
        # A failover needs a majority of them: fewer answering is one failure from none.
        return Finding("sentinels", False, f"{detail}; silent: {', '.join(silent)}", decisive=False)
    return Finding("sentinels", True, detail, decisive=False)


def check_store(database: Database) -> Finding:
    try:
        database.ping()
    except Exception as exc:  # noqa: BLE001
        return Finding("store", False, f"{_down(exc)}: the database does not answer")
    return Finding("store", True, "ok")


def check_migrations(database_url: str) -> Finding:
    try:
        current = current_revision(database_url)
    except Exception as exc:  # noqa: BLE001
        return Finding("migrations", False, f"{_down(exc)}: could not read the schema's revision")
    heads = head_revisions()
    if current in heads:
        return Finding("migrations", True, "ok")
    return Finding("migrations", False, f"the schema is at {current or 'nothing'}, the code needs "
                                        f"{', '.join(sorted(heads))}: run `telemed db upgrade`")


def check_clock(client: redis.Redis, database: Database) -> Finding:
    """This host's clock against Redis's and the database's; the worst of the two."""
    found = []
    try:
        before = time.time()
        seconds, micros = client.time()
        found.append(skew_finding("Redis", *measure_offset(before, seconds + micros / 1e6, time.time())))
    except Exception as exc:  # noqa: BLE001
        found.append(Finding("clock", False, f"Redis's clock unreadable ({type(exc).__name__})"))
    try:
        before = time.time()
        server = database.server_time()
        if server is not None:
            found.append(skew_finding("the database", *measure_offset(before, server, time.time())))
    except Exception as exc:  # noqa: BLE001
        found.append(Finding("clock", False, f"the database's clock unreadable ({type(exc).__name__})"))
    bad = [f for f in found if not f.ok]
    if bad:
        return Finding("clock", False, "; ".join(f.detail for f in bad))
    return Finding("clock", True, "ok" if found else "no clock to compare")


def check_zoom(settings: Settings) -> Finding:
    if not settings.zoom_s2s_configured:
        return Finding("zoom", True, "no account app configured (TELEMED_ZOOM_ACCOUNT_ID, _CLIENT_ID, "
                                     "_CLIENT_SECRET): meetings need doctors' own connections", decisive=False)
    assert settings.zoom_client_id and settings.zoom_client_secret and settings.zoom_account_id
    try:
        grant = request_token(settings.zoom_oauth_url, client_id=settings.zoom_client_id,
                              client_secret=settings.zoom_client_secret.get_secret_value(),
                              form={"grant_type": "account_credentials", "account_id": settings.zoom_account_id},
                              timeout=settings.zoom_timeout_seconds)
    except ZoomError as exc:
        status = f" (HTTP {exc.status})" if exc.status else ""
        return Finding("zoom", False, f"token grant failed: {type(exc).__name__}{status}; check "
                                      "TELEMED_ZOOM_ACCOUNT_ID, _CLIENT_ID and _CLIENT_SECRET", decisive=False)
    return Finding("zoom", True, f"ok (token granted, valid {grant.expires_in:.0f} s)", decisive=False)


def check_smtp(settings: Settings) -> Finding:
    if settings.smtp_url is None:
        return Finding("smtp", True, f"no SMTP server: mail is written to {settings.resolved_mail_dir}",
                       decisive=False)
    channel = SmtpChannel(settings.smtp_url.get_secret_value(), timeout=settings.smtp_timeout_seconds)
    try:
        channel.check_login()
    except DeliveryError as exc:
        return Finding("smtp", False, f"{exc}; check TELEMED_SMTP_URL", decisive=False)
    return Finding("smtp", True, "ok", decisive=False)


def quick_checks(settings: Settings, client: redis.Redis, database: Database) -> list[Finding]:
    return [check_store(database), check_redis(settings, client), check_clock(client, database)]


def slow_checks(settings: Settings, database_url: str) -> list[Finding]:
    found = [check_migrations(database_url)]
    if (sentinels := check_sentinels(settings)) is not None:
        found.append(sentinels)
    return [*found, check_zoom(settings), check_smtp(settings)]


def run_checks(settings: Settings, client: redis.Redis, database: Database) -> list[Finding]:
    """Everything, now (``telemed check``)."""
    return quick_checks(settings, client, database) + slow_checks(settings, settings.resolved_database_url)


def readiness(settings: Settings, client: redis.Redis, database: Database,
              every: float = SLOW_CHECKS_EVERY_SECONDS) -> Callable[[], list[Finding]]:
    """The checks for ``/readyz``: the slow ones remembered for ``every`` seconds."""
    lock = threading.Lock()
    remembered: list[tuple[float, list[Finding]]] = []

    def slow() -> list[Finding]:
        with lock:
            if not remembered or time.monotonic() - remembered[0][0] > every:
                remembered[:] = [(time.monotonic(), slow_checks(settings, settings.resolved_database_url))]
            return remembered[0][1]

    return lambda: quick_checks(settings, client, database) + slow()
