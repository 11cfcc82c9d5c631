"""Many hosts, any one failing: three worker hosts and a web host on network stacks of
their own, Redis under Sentinel, a PostgreSQL of the run's own; while bookings flow, one
host is cut off the network for 20 s, another host's processes are killed outright,
PostgreSQL restarts and Redis fails over. Then the run must settle, and the checks of
the crash-and-fault run (tests/support/chaos/checks.py) judge it.

Hosts are Linux network namespaces (tests/support/netns.py; root only). Redis (a primary,
a replica, three Sentinels), PostgreSQL, the Zoom simulator and the mail server run in
the root namespace on the bridge address, reachable only over each host's link.

Size: ``TELEMED_CLUSTER_FULL=1`` (``make cluster``) posts 200 bookings; otherwise 40.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from telemed.foundation.cipher import Cipher
from telemed.samples import DOCTORS
from telemed.store.db import Database
from telemed.store.migrate import upgrade
from telemed.store.models import InboxEvent
from telemed.zoom.simulator import ZoomSimulator
from tests.support.chaos import checks
from tests.support.chaos.cluster import REPO, Proc
from tests.support.chaos.plan import build_plan
from tests.support.chaos.poster import post_all
from tests.support.chaos.report import render
from tests.support.netns import Network, network
from tests.support.private_postgres import private_postgres
from tests.support.sentinel import SentinelGroup, sentinel_group
from tests.support.smtp import smtp_server
from tests.support.webserver import free_port

FULL = os.environ.get("TELEMED_CLUSTER_FULL") == "1"
BOOKINGS = int(os.environ.get("TELEMED_CLUSTER_BOOKINGS") or (200 if FULL else 40))
pytestmark = [
    pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(900 if FULL else 300),
    pytest.mark.skipif(os.environ.get("TELEMED_CLUSTER") != "1",
                       reason="the cluster run needs root and network namespaces: make cluster"),
]
INGRESS_SECRET = "cluster-ingress-secret-3a9f"
CLIENT_SECRET = "cluster-zoom-secret-d2c4"
CUT_SECONDS = 20.0
POSTING_SECONDS = 55.0  # the faults take about 45 s
THREADS = 4
WORKER_HOSTS = ["worker-1", "worker-2", "worker-3"]
# At-least-once: a message in flight when its host is cut or killed, or when PostgreSQL
# restarts under every host, may be done again (a mail sent whose "sent" never committed).
# So at most one duplicate per worker thread of the cut host, of the killed host, and of
# every host at the restart (docs/deploy.md).
DUPLICATE_BOUND = THREADS * (1 + 1 + len(WORKER_HOSTS))


@dataclass
class Fault:
    name: str
    at: float  # wall clock (time.time()), comparable with the store's timestamps
    done: Callable[[], object]
    note: str = ""
    finished_at: float = 0.0


@dataclass
class Hosts:
    net: Network
    env: dict[str, str]
    workdir: Path
    web_port: int
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        telemed = [sys.executable, "-m", "telemed"]
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        web = self.net.hosts["web"]
        self.procs["web"] = Proc("web", web.command([*telemed, "web", "--host", web.address,
                                                     "--port", str(self.web_port)]), logs / "web.log")
        for name in WORKER_HOSTS:
            host = self.net.hosts[name]
            self.procs[f"{name}/worker"] = Proc(f"{name}/worker", host.command(
                [*telemed, "worker", "--processes", "1", "--threads", str(THREADS)]), logs / f"{name}-worker.log")
        # The scheduler on the first worker host, its standby on the second.
        for name in WORKER_HOSTS[:2]:
            self.procs[f"{name}/scheduler"] = Proc(f"{name}/scheduler", self.net.hosts[name].command(
                [*telemed, "scheduler", "--interval", "1"]), logs / f"{name}-scheduler.log")

    @property
    def web_url(self) -> str:
        return f"http://{self.net.hosts['web'].address}:{self.web_port}"

    def start(self) -> None:
        for proc in self.procs.values():
            proc.start(self.env, self.workdir)

    def on(self, host: str) -> list[Proc]:
        return [p for name, p in self.procs.items() if name.startswith(f"{host}/")]

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop(timeout=10)

    def logs(self) -> dict[str, str]:
        return {n: p.log_path.read_text(errors="replace") for n, p in self.procs.items() if p.log_path.exists()}


def _wait_web(hosts: Hosts, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{hosts.web_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("telemed web did not come up:\n" + hosts.logs().get("web", "")[-3000:])


def _env(net: Network, group: SentinelGroup, database_url: str, key: str, sim_port: int, smtp_port: int,
         workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
    env.update({
        "TELEMED_REDIS_SENTINELS": group.sentinels,
        "TELEMED_REDIS_MASTER_NAME": group.master_name,
        "TELEMED_REDIS_NAMESPACE": "cluster",
        "TELEMED_REDIS_SOCKET_TIMEOUT_SECONDS": "3",
        "TELEMED_DATABASE_URL": database_url,
        "TELEMED_SECRET_KEYS": key,
        "TELEMED_DATA_DIR": str(workdir / "data"),
        "TELEMED_ZOOM_API_URL": f"http://127.0.0.1:{sim_port}/v2",
        "TELEMED_ZOOM_OAUTH_URL": f"http://127.0.0.1:{sim_port}/oauth",
        "TELEMED_ZOOM_ACCOUNT_ID": "cluster-account",
        "TELEMED_ZOOM_CLIENT_ID": "cluster-client",
        "TELEMED_ZOOM_CLIENT_SECRET": CLIENT_SECRET,
        "TELEMED_ZOOM_TIMEOUT_SECONDS": "3",
        "TELEMED_ZOOM_DAILY_CALLS_PER_HOST": "100000",
        "TELEMED_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "TELEMED_SMTP_TIMEOUT_SECONDS": "5",
        "TELEMED_INGRESS_SECRET": INGRESS_SECRET,
        "TELEMED_SCHEDULER_INTERVAL_SECONDS": "1",
        # The standby takes over the cut host's scheduler within the 20 s cut.
        "TELEMED_SCHEDULER_LOCK_SECONDS": "6",
        "TELEMED_RECONCILE_GRACE_SECONDS": "5",
        "TELEMED_NOTIFICATION_RETRY_BASE_SECONDS": "1",
        "TELEMED_LOG_FORMAT": "json",
        "TELEMED_LOG_LEVEL": "DEBUG",  # Dramatiq's received/acknowledged lines: who did which message
        "PYTHONPATH": str(REPO),
    })
    return env


def test_many_hosts_any_one_failing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = build_plan(BOOKINGS, seed=1515 + BOOKINGS, prefix="C-")
    key = Fernet.generate_key().decode()
    with network(["web", *WORKER_HOSTS]) as net, \
            sentinel_group(tmp_path / "redis", host=net.gateway) as group, \
            private_postgres(host=net.gateway) as pg, \
            smtp_server(host=net.gateway) as smtp, \
            ZoomSimulator(client_id="cluster-client", client_secret=CLIENT_SECRET, account_id="cluster-account",
                          host=net.gateway) as sim:
        sim_port, smtp_port = int(sim.api_url.rsplit(":", 1)[1].split("/")[0]), smtp.port
        for host in net.hosts.values():
            net.relay(host, sim_port)
            net.relay(host, smtp_port)
        upgrade(pg.url)
        database = Database(pg.url, cipher=Cipher([key]))
        hosts = Hosts(net, _env(net, group, pg.url, key, sim_port, smtp_port, tmp_path), tmp_path, free_port())
        faults: list[Fault] = []
        began = time.monotonic()
        try:
            hosts.start()
            _wait_web(hosts)
            results: dict[str, object] = {}
            # Spread over the whole fault sequence: every fault meets bookings in flight.
            rate = len(plan.deliveries) / POSTING_SECONDS
            poster = threading.Thread(target=lambda: results.update(posted=post_all(
                hosts.web_url, INGRESS_SECRET, plan.deliveries, threads=4, per_second=rate)), daemon=True)
            poster.start()
            _run_faults(net, hosts, group, pg, faults)
            poster.join(timeout=600)
            assert "posted" in results, "the booking system never finished posting"
            deadline = time.monotonic() + (600 if FULL else 120)
            while not checks.settled(database, plan, sim) and time.monotonic() < deadline:
                time.sleep(1.0)
            settled_s = time.monotonic() - began
        finally:
            hosts.stop()
        hosts_logs = hosts.logs()
        posted = results["posted"]
        verdict = checks.judge(plan, database, sim, smtp.messages, accepted=posted.accepted,  # type: ignore[attr-defined]
                               kills=DUPLICATE_BOUND, doctor_emails={d: f"{d.lower()}@clinic.example" for d, _ in DOCTORS})
        recovery = _recovery(database, faults)
        database.dispose()
    verdict.numbers = {
        "bookings": len(plan.histories),
        "events posted (with repeats)": len(plan.deliveries),
        "ingress answers": dict(sorted(posted.statuses.items())),  # type: ignore[attr-defined]
        "ingress retries (503 or connection)": posted.retries,  # type: ignore[attr-defined]
        **{f"{f.name}: {f.note}": recovery[f.name] for f in faults},
        "Zoom meetings created": sim.stats()["counters"].get("meetings.created", 0),
        **_cut_host_work(hosts_logs, faults[0].at, faults[0].at + CUT_SECONDS),
        "mails received": verdict.numbers.get("mails", 0),
        "duplicate mails": verdict.numbers.get("duplicate_mails", 0),
        "settled after (s)": round(settled_s, 1),
    }
    standby = hosts_logs.get("worker-2/scheduler", "")
    verdict.add("the standby scheduler took over from the cut host", "worker-2's scheduler active while cut",
                "took over" if "scheduler active" in standby else "never active",
                [] if "scheduler active" in standby else ["worker-2's scheduler never became active"])
    verdict.add("ingress answered every post", "202 accepted or duplicate",
                ", ".join(f"{n} × {s}" for s, n in sorted(posted.statuses.items())), posted.failures)  # type: ignore[attr-defined]
    summary = render(verdict, f"Cluster run, {len(plan.histories)} bookings, 3 worker hosts + web host")
    (tmp_path / "summary.txt").write_text(summary)
    with capsys.disabled():
        print("\n" + summary)
    assert verdict.ok, f"{verdict.failures()}\n\n{summary}\nlogs: {tmp_path / 'logs'}"


def _run_faults(net: Network, hosts: Hosts, group: SentinelGroup, pg, faults: list[Fault]) -> None:  # type: ignore[no-untyped-def]
    """The four faults, one after another while the bookings flow."""
    time.sleep(3)
    net.cut("worker-1")  # the scheduler's host: the standby on worker-2 takes over
    cut_at = time.time()
    faults.append(Fault("worker-1 cut off the network", cut_at, lambda: None, note=f"{CUT_SECONDS:.0f} s link down"))
    time.sleep(4)
    kill_at = time.time()
    for proc in hosts.on("worker-2"):
        proc.kill()
    faults.append(Fault("worker-2 processes killed", kill_at, lambda: None, note="SIGKILL, back after 3 s"))
    time.sleep(3)
    for proc in hosts.on("worker-2"):
        proc.start(hosts.env, hosts.workdir)
    time.sleep(max(0.0, cut_at + CUT_SECONDS - time.time()))
    net.restore("worker-1")
    time.sleep(3)
    pg_at = time.time()
    away = pg.restart()
    faults.append(Fault("PostgreSQL restarted", pg_at, lambda: None, note=f"away {away:.1f} s"))
    time.sleep(5)
    redis_at = time.time()
    took = group.failover()
    faults.append(Fault("Redis failed over", redis_at, lambda: None, note=f"Sentinels done in {took:.1f} s"))


_ID = re.compile(r"message .*'([0-9a-f-]{36})'")


def _message_times(text: str, prefix: str) -> dict[str, float]:
    """message id -> when a log line starting with ``prefix`` named it (first time)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if f'"event": "{prefix}' not in line:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            match = _ID.search(record["event"])
            if match and match.group(1) not in found:
                found[match.group(1)] = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
    return found


def _cut_host_work(logs: dict[str, str], cut_at: float, restored_at: float) -> dict[str, str]:
    """The messages worker-1 was running when its link went down: who finished them, when."""
    received = _message_times(logs.get("worker-1/worker", ""), "Received message")
    acked = _message_times(logs.get("worker-1/worker", ""), "Acknowledging message")
    stranded = [m for m, at in received.items() if at < cut_at and not acked.get(m, restored_at + 1) < cut_at]
    elsewhere: dict[str, float] = {}
    for name in ("worker-2/worker", "worker-3/worker"):
        for m, at in _message_times(logs.get(name, ""), "Received message").items():
            if m in stranded and at > cut_at:
                elsewhere[m] = min(at, elsewhere.get(m, at))
    late = [m for m in stranded if m in acked and acked[m] >= restored_at]
    redone = (f"{len(elsewhere)}, after ≤ {max(elsewhere.values()) - cut_at:.1f} s" if elsewhere else "0")
    return {"worker-1's messages in flight at the cut": len(stranded),
            "  of them redone by another host": redone,
            "  of them finished by worker-1 after the link came back": len(late)}


def _recovery(database: Database, faults: list[Fault], window: float = 10.0) -> dict[str, str]:
    """Per fault: how long events accepted in the ``window`` seconds after it waited to be
    processed (the longest), against the run's median."""
    with database.session() as session:
        rows = [(e.received_at, e.processed_at) for e in session.exec(select(InboxEvent))]

    def ts(moment: datetime) -> float:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    delays = [(ts(r), ts(p) - ts(r)) for r, p in rows if p is not None]
    median = statistics.median(d for _, d in delays) if delays else 0.0
    found = {}
    for fault in faults:
        during = [d for at, d in delays if fault.at <= at < fault.at + window]
        found[fault.name] = (f"events waited ≤ {max(during):.1f} s (median of the run {median:.1f} s)"
                             if during else "no event accepted right after")
    return found

