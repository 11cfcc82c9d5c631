"""Zoom limits benchmark: token grants per lifetime, and create rate against the limit.

Run: ``python -m benchmarks.zoom_limits`` (``--help`` for sizes). It prints a Markdown
table and writes it to ``docs/benchmarks/zoom.md``. Everything runs on this machine: the
Zoom simulator in this process, Redis (``--redis-url``, else the embedded server), SQLite.

1. **Tokens.** N processes x T threads call Zoom for D seconds with a short token
   lifetime, each arm side by side with its baseline:
   - a doctor's own token (refresh tokens rotate): *telemed*
     (``zoom.user_tokens.UserTokenProvider``: Redis lock + compare-and-swap on the stored
     version, proactive refresh, waiting callers reuse the new pair) against *naive*
     refresh-on-expiry as booking plugins do it (read the pair from the database, refresh
     when expired, write it back; on ``invalid_grant`` re-read a few times in case another
     process just refreshed) and *naive-strict* (``invalid_grant`` means "reconnect");
   - the account's server-to-server token: *telemed* (``zoom.tokens.AccountTokenProvider``,
     one token shared through Redis) against *per-process* (each process fetches its own
     when its copy expires).
   Reported: for each grant of the run, how many other grants the simulator issued while
   its token was still valid (max and mean; from its grant log: the target's "at most one
   grant per token lifetime"), grants x lifetime / run time, invalid_grant answers, failed
   calls, and whether the doctor's grant survived.
2. **Create rate.** N x T threads create meetings for D seconds against the simulator's
   per-second limit (Medium), twice: *telemed* paced by ``zoom.ratelimit.RateLimiter``
   shared through Redis, and *unpaced* (the same short jittered pause after a 429, no
   pacer). Reported from the simulator's own log: meetings created per second over the
   run next to the limit, the busiest one-second window, and the 429s. This is the pacer
   alone (``--safety`` tries another margin); ``telemed bench`` item 3 leads with the
   whole pipeline (:mod:`benchmarks.zoom_pipeline`).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "zoom.md"
DOCTOR, EMAIL = "D-1", "d-1@clinic.example"
USER_ARMS = ("telemed", "naive", "naive-strict")
ACCOUNT_ARMS = ("telemed", "per-process")


@dataclass
class Arm:
    mode: str
    processes: int
    threads: int
    seconds: float
    api_url: str
    oauth_url: str
    client: tuple[str, str]
    redis_url: str
    namespace: str
    account_id: str = ""
    database_url: str = ""
    key: str = ""
    meeting_id: int = 0
    token: str = ""
    limit: float = 0.0
    safety: float = 0.0  # the pacer's share of the limit (0: zoom.ratelimit.SAFETY)
    start_at: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TokenRow:
    token: str  # doctor | account
    arm: str
    processes: int
    threads: int
    seconds: float
    lifetime: float
    calls: int
    failed: int
    grants: int
    # Other grants issued while a grant's token was still valid (the target's measure),
    # over the run's grants: the most for any one grant, and the mean.
    grants_while_valid_max: int
    grants_while_valid_mean: float
    grants_per_lifetime_of_wall_time: float  # grants x lifetime / seconds
    invalid_grant: int
    grant_alive: bool | None  # doctor tokens only


@dataclass
class RateRow:
    arm: str
    processes: int
    threads: int
    seconds: float
    limit_per_second: float
    created: int
    created_per_second: float
    share_of_limit: float
    busiest_second: int
    least_ms_for_limit_plus_one: float | None  # Zoom's window: 1,000 ms; less is a 429
    answers_429: int


# Baselines -----------------------------------------------------------------------------


class NaiveUserProvider:
    """A doctor's token, refreshed on expiry with no coordination between processes."""

    def __init__(self, arm: Arm, database: Any, rereads: int) -> None:
        from telemed.store import zoom_tokens

        self._arm, self._database, self._zt, self._rereads = arm, database, zoom_tokens, rereads
        self._force = False

    def _load(self) -> Any:
        with self._database.session() as session:
            return self._zt.load_grant(session, DOCTOR)

    def access_token(self) -> str:
        from telemed.zoom.errors import ZoomGrantRevoked
        from telemed.zoom.oauth import request_token

        grant = self._load()
        if not self._force and time.time() < grant.expires_at - 1:
            return str(grant.access_token)
        self._force = False
        try:
            new = request_token(self._arm.oauth_url, client_id=self._arm.client[0], client_secret=self._arm.client[1],
                                form={"grant_type": "refresh_token", "refresh_token": grant.refresh_token})
        except ZoomGrantRevoked:
            for _ in range(self._rereads):  # another process may be storing a new pair right now
                time.sleep(0.05)
                latest = self._load()
                if latest.refresh_token != grant.refresh_token:
                    return str(latest.access_token)
            raise
        with self._database.session() as session:  # written back as is: no version check
            row = session.get(self._zt.DoctorZoomToken, DOCTOR)
            row.access_token, row.refresh_token = new.access_token, str(new.refresh_token)
            row.expires_at = datetime.now(UTC) + timedelta(seconds=new.expires_in)
            session.add(row)
        return new.access_token

    def invalidate(self, token: str) -> None:
        self._force = True


class PerProcessAccountProvider:
    """The account token cached in each process, fetched again when that copy expires."""

    def __init__(self, arm: Arm) -> None:
        self._arm = arm
        self._lock = threading.Lock()
        self._token, self._expires = "", 0.0

    def access_token(self) -> str:
        from telemed.zoom.oauth import request_token

        with self._lock:
            if time.time() >= self._expires - 1:
                grant = request_token(self._arm.oauth_url, client_id=self._arm.client[0],
                                      client_secret=self._arm.client[1],
                                      form={"grant_type": "account_credentials", "account_id": self._arm.account_id})
                self._token, self._expires = grant.access_token, time.time() + grant.expires_in
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            self._expires = 0.0


# Worker processes ----------------------------------------------------------------------


def _quiet() -> None:
    from telemed.logging import configure_logging

    configure_logging(format="console", level="ERROR", capture_uncaught=False)


def _provider(arm: Arm) -> Any:
    import redis as redis_lib

    from telemed.foundation.cipher import Cipher
    from telemed.store.db import Database
    from telemed.store.zoom_tokens import DatabaseTokenStore
    from telemed.zoom.tokens import AccountTokenProvider
    from telemed.zoom.user_tokens import UserTokenProvider

    client_redis = redis_lib.Redis.from_url(arm.redis_url)
    if arm.mode == "account:telemed":
        return AccountTokenProvider(arm.oauth_url, arm.account_id, arm.client[0], arm.client[1], client_redis,
                                    Cipher([arm.key]), namespace=arm.namespace, margin_seconds=1)
    if arm.mode == "account:per-process":
        return PerProcessAccountProvider(arm)
    database = Database(arm.database_url, cipher=Cipher([arm.key]))
    if arm.mode == "doctor:telemed":
        return UserTokenProvider(DOCTOR, DatabaseTokenStore(database), oauth_url=arm.oauth_url,
                                 client_id=arm.client[0], client_secret=arm.client[1], redis_client=client_redis,
                                 cipher=Cipher([arm.key]), namespace=arm.namespace, margin_seconds=1)
    return NaiveUserProvider(arm, database, rereads=0 if arm.mode == "doctor:naive-strict" else 5)


def _token_process(arm: Arm, out: Any, ready: Any, go: Any, start: Any) -> None:
    from telemed.zoom.client import ZoomClient
    from telemed.zoom.errors import ZoomError, ZoomGrantRevoked

    _quiet()
    provider = _provider(arm)
    _wait_for_start(arm, ready, go, start)
    tally = {"calls": 0, "failed": 0, "dead": False}
    lock = threading.Lock()

    def run() -> None:
        zoom = ZoomClient(arm.api_url, provider, timeout=5)
        while time.time() < arm.start_at:
            time.sleep(0.005)
        while time.time() < arm.start_at + arm.seconds:
            try:
                zoom.get_meeting(arm.meeting_id)
                failed = 0
            except ZoomGrantRevoked:
                with lock:
                    tally["calls"], tally["failed"], tally["dead"] = tally["calls"] + 1, tally["failed"] + 1, True
                return  # the doctor must reconnect: nothing works for them any more
            except ZoomError:
                failed = 1
            with lock:
                tally["calls"] += 1
                tally["failed"] += failed
            time.sleep(0.02)

    threads = [threading.Thread(target=run) for _ in range(arm.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(tally)


def _rate_process(arm: Arm, out: Any, ready: Any, go: Any, start: Any) -> None:
    import redis as redis_lib

    from telemed.workers.policy.retries import rate_limit_delay_ms
    from telemed.zoom.client import ZoomClient
    from telemed.zoom.errors import ZoomError, ZoomRateLimited
    from telemed.zoom.policy import build_meeting_request, generate_passcode, make_marker
    from telemed.zoom.ratelimit import SAFETY, RateLimiter
    from telemed.zoom.tokens import StaticTokenProvider

    _quiet()
    limiter = None
    if arm.mode == "telemed":
        pacer = RateLimiter(redis_lib.Redis.from_url(arm.redis_url), {"Medium": arm.limit}, namespace=arm.namespace,
                            safety=arm.safety or SAFETY)
        limiter = pacer.for_scope("account:bench")
    _wait_for_start(arm, ready, go, start)
    end = arm.start_at + arm.seconds

    def run() -> None:
        zoom = ZoomClient(arm.api_url, StaticTokenProvider(arm.token), timeout=5, limiter=limiter)
        start = datetime.now(UTC) + timedelta(days=2)
        while time.time() < arm.start_at:
            time.sleep(0.005)
        while time.time() < end:
            body = build_meeting_request(topic="bench", start_time=start, duration_minutes=30, timezone="UTC",
                                         passcode=generate_passcode(), marker=make_marker(uuid.uuid4().hex))
            try:
                zoom.create_meeting("me", body)
            except ZoomRateLimited as exc:
                # What our retry policy does with a 429 (a short jittered pause), in place.
                time.sleep(min(rate_limit_delay_ms(exc) / 1000.0, max(0.0, end - time.time())))
            except ZoomError:
                pass

    threads = [threading.Thread(target=run) for _ in range(arm.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({})


def _wait_for_start(arm: Arm, ready: Any, go: Any, start: Any) -> None:
    """Every process set up (imports, connections) before the clock starts for all at once."""
    ready.put(1)
    go.wait()
    arm.start_at = start.value


def _run_processes(target: Any, arm: Arm) -> Arm:
    """Run the arm in N fresh processes (spawned, like separate worker hosts); returns the arm
    with its real start time and ``results`` (one dict per process)."""
    context = mp.get_context("spawn")
    out, ready, go, start = context.Queue(), context.Queue(), context.Event(), context.Value("d", 0.0)
    procs = [context.Process(target=target, args=(arm, out, ready, go, start)) for _ in range(arm.processes)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)
    start.value = time.time() + 0.5
    arm.start_at = start.value
    go.set()
    arm.results = [out.get(timeout=arm.seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    return arm


# Measurements --------------------------------------------------------------------------


def measure_tokens(redis_url: str, workdir: Path, processes: int, threads: int, seconds: float,
                   lifetime: float, database_url: str | None = None) -> list[TokenRow]:
    from cryptography.fernet import Fernet

    from telemed.foundation.cipher import Cipher
    from telemed.store import zoom_tokens
    from telemed.store.db import Database
    from telemed.store.migrate import upgrade
    from telemed.zoom.simulator import ZoomSimulator
    from telemed.zoom.simulator.connect import connect_doctor

    rows = []
    for token, arms in (("doctor", USER_ARMS), ("account", ACCOUNT_ARMS)):
        for name in arms:
            url = database_url or f"sqlite:///{workdir / f'tokens-{token}-{name}.db'}"
            upgrade(url)
            key = Fernet.generate_key().decode()
            database = Database(url, cipher=Cipher([key]))
            with ZoomSimulator(token_lifetime_seconds=lifetime, latency_seconds=0.005) as sim:
                connect_doctor(database, sim, DOCTOR, EMAIL)
                with database.session() as session:
                    first = zoom_tokens.load_grant(session, DOCTOR)
                assert first is not None
                bearer = first.access_token if token == "doctor" else sim.issue_token()
                meeting = requests.post(f"{sim.api_url}/users/me/meetings", json={"topic": "bench"},
                                        headers={"Authorization": f"Bearer {bearer}"}, timeout=5).json()
                before, since = dict(sim.stats()["counters"]), time.time()
                client = (sim.oauth_client_id, sim.oauth_client_secret) if token == "doctor" else \
                    (sim.client_id, sim.client_secret)
                arm = Arm(f"{token}:{name}", processes, threads, seconds, sim.api_url, sim.oauth_url, client,
                          redis_url, f"bench-{uuid.uuid4().hex[:8]}", account_id=sim.account_id,
                          database_url=url, key=key, meeting_id=int(meeting["id"]))
                results = _run_processes(_token_process, arm).results
                counters = dict(sim.stats()["counters"])
                overlap = _grant_overlap(sim, token, since, lifetime)
                alive = None
                if token == "doctor":
                    with database.session() as session:
                        final = zoom_tokens.load_grant(session, DOCTOR)
                    # Survived: nobody was told to reconnect and the stored refresh token works.
                    alive = (not any(r["dead"] for r in results) and final is not None and requests.post(
                        f"{sim.oauth_url}/token", data={"grant_type": "refresh_token",
                                                        "refresh_token": final.refresh_token},
                        auth=client, timeout=5).status_code == 200)
            database.dispose()
            kind = "grant.refresh_token" if token == "doctor" else "grant.account"
            grants = counters.get(kind, 0) - before.get(kind, 0)
            rows.append(TokenRow(
                token=token, arm=name, processes=processes, threads=threads, seconds=seconds, lifetime=lifetime,
                calls=sum(r["calls"] for r in results), failed=sum(r["failed"] for r in results), grants=grants,
                grants_while_valid_max=overlap[0], grants_while_valid_mean=round(overlap[1], 2),
                grants_per_lifetime_of_wall_time=round(grants / (seconds / lifetime), 2),
                invalid_grant=counters.get("invalid_grant", 0), grant_alive=alive,
            ))
    return rows


def _grant_overlap(sim: Any, token: str, since: float, lifetime: float) -> tuple[int, float]:
    """(max, mean) other grants while a grant's token was valid, from the simulator's
    grant log: the run's grants of this token only (setup's grants left out)."""
    from telemed.benchmarks.zoom_log import overlap_summary

    kind = "refresh_token" if token == "doctor" else "account"
    return overlap_summary((g["at"] for g in sim.grant_log(kind) if g["at"] >= since), lifetime)


def measure_rates(redis_url: str, processes: int, threads: int, seconds: float, limit: float,
                  safety: float = 0.0) -> list[RateRow]:
    """Both bare-thread arms; ``safety`` overrides the pacer's ``SAFETY`` (trials of
    another margin without editing it)."""
    from telemed.benchmarks.zoom_log import busiest_second, created_arrivals, shortest_span_ms
    from telemed.zoom.simulator import ZoomSimulator

    rows = []
    for name in ("telemed", "unpaced"):
        with ZoomSimulator(rate_limits={"Medium": limit, "Light": limit * 1.5}) as sim:
            arm = Arm(name, processes, threads, seconds, sim.api_url, sim.oauth_url, ("", ""), redis_url,
                      f"bench-{uuid.uuid4().hex[:8]}", token=sim.issue_token(), limit=limit, safety=safety)
            arm = _run_processes(_rate_process, arm)
            log = sim.requests(method="POST")
        # What Zoom accepted inside the measured window (calls that took a pacer slot
        # before the end may finish after it; they are left out for both arms).
        end = arm.start_at + seconds
        created = sorted(entry["at"] for entry in log if entry["status"] == 201 and entry["at"] <= end)
        rows.append(RateRow(
            arm=name, processes=processes, threads=threads, seconds=seconds, limit_per_second=limit,
            created=len(created), created_per_second=round(len(created) / seconds, 2),
            share_of_limit=round(len(created) / seconds / limit, 3), busiest_second=busiest_second(created),
            least_ms_for_limit_plus_one=shortest_span_ms(
                created_arrivals(e for e in log if e["at"] <= end), int(limit) + 1),
            answers_429=sum(1 for entry in log if entry["status"] == 429 and entry["at"] <= end),
        ))
    return rows


# Report --------------------------------------------------------------------------------


def markdown(tokens: list[TokenRow], rates: list[RateRow], note: str = "") -> str:
    lines = ["# Zoom limits benchmark", "",
             "Measured by `python -m benchmarks.zoom_limits` (the method is in its docstring). Each arm "
             "ran next to its baseline on the same machine, simulator and Redis.", ""]
    if note:
        lines += [note, ""]
    lines += ["## Token grants per lifetime", "",
              "| token | arm | processes x threads | seconds | lifetime (s) | calls | failed calls | grants | "
              "other grants while a token was valid (max / mean) | grants per lifetime of wall time | "
              "invalid_grant | doctor's grant survived |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in tokens:
        survived = "-" if t.grant_alive is None else ("yes" if t.grant_alive else "**no**: the doctor must reconnect")
        lines.append(f"| {t.token} | {t.arm} | {t.processes} x {t.threads} | {t.seconds:g} | {t.lifetime:g} | "
                     f"{t.calls} | {t.failed} | {t.grants} | {t.grants_while_valid_max} / "
                     f"{t.grants_while_valid_mean:g} | {t.grants_per_lifetime_of_wall_time:g} | {t.invalid_grant} | "
                     f"{survived} |")
    lines += ["", "Reading it: \"other grants while a token was valid\" counts, for each grant of the run (from "
              "the simulator's grant log), the grants issued before its token expired. telemed renews once, 1 s "
              "before expiry here (TELEMED_ZOOM_TOKEN_REFRESH_MARGIN_SECONDS, default 300 s, capped at half the "
              "lifetime), so exactly 1 (its successor) whatever the number of processes. \"Grants per lifetime of "
              "wall time\" (grants x lifetime / seconds) is about lifetime / (lifetime - margin) for any proactive "
              "refresh: 1.25 here, 1.09 with Zoom's one-hour tokens and the default margin. "
              "Rotation lets only one refresh per refresh token succeed, so uncoordinated refreshes of a doctor's token show up "
              "as invalid_grant answers, not extra grants: each one is a process that spent a dead refresh token, "
              "and a plugin that treats it as \"reconnect\" (naive-strict) loses the doctor's connection. Without "
              "rotation (the account token) every process fetches its own: about processes x more grants.", "",
              "## Meeting creates against the per-second limit (Medium)", "",
              "| arm | processes x threads | seconds | limit (/s) | created | created per second | share of limit | "
              "busiest second | least time for limit + 1 creates (ms) | 429 answers |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rates:
        lines.append(f"| {r.arm} | {r.processes} x {r.threads} | {r.seconds:g} | {r.limit_per_second:g} | "
                     f"{r.created} | {r.created_per_second:g} | {r.share_of_limit:.0%} | {r.busiest_second} | "
                     f"{r.least_ms_for_limit_plus_one if r.least_ms_for_limit_plus_one is not None else '—'} | "
                     f"{r.answers_429} |")
    from telemed.zoom.ratelimit import SAFETY, WINDOW_ALLOWANCE_MS

    lines += ["", f"telemed paces at {SAFETY:.0%} of the plan's limit (`zoom.ratelimit.SAFETY`) and lets no "
              f"limit + 1 calls go within {1 + WINDOW_ALLOWANCE_MS / 1000:g} s (see its docstring for why): Zoom "
              "counts arrivals per second, and jitter on the way can squeeze evenly sent calls into one window. "
              "The unpaced arm gets about as many meetings through by bouncing off the limit: every 429 is a "
              "call Zoom refused, and retried work that arrives late.", ""]
    return "\n".join(lines)


def run_tokens(ctx: Any) -> dict[str, Any]:
    """For ``telemed bench`` (benchmarks.runner): the token half at the runner's scale."""
    full = ctx.scale.name == "full"
    rows = measure_tokens(ctx.services.redis_url, Path(ctx.workdir), ctx.scale.processes, ctx.scale.threads,
                          seconds=30.0 if full else 8.0, lifetime=5.0)
    return {"rows": [asdict(r) for r in rows]}


def run_zoom_limits(ctx: Any) -> dict[str, Any]:
    """For ``telemed bench``: item 3 at the runner's scale. ``pipeline``: the headline,
    bookings through real workers (:mod:`benchmarks.zoom_pipeline`); ``rows``: the pacer
    alone, from bare threads."""
    from telemed.benchmarks.zoom_pipeline import measure_pipeline

    pipeline = measure_pipeline(ctx)
    rows = measure_rates(ctx.services.redis_url, ctx.scale.processes, ctx.scale.threads,
                         seconds={"full": 30.0, "small": 6.0}.get(ctx.scale.name, 3.0), limit=20.0)
    return {"pipeline": [asdict(r) for r in pipeline], "rows": [asdict(r) for r in rows]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoom_limits",
                                     description="Token grants per lifetime and create rate against Zoom's limits.")
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0, help="per arm (default: 30)")
    parser.add_argument("--lifetime", type=float, default=5.0, help="access token lifetime in the simulator (s)")
    parser.add_argument("--limit", type=float, default=20.0, help="the simulator's Medium limit per second (Pro: 20)")
    parser.add_argument("--safety", type=float, default=0.0,
                        help="the pacer's share of the limit in the create-rate half (default: zoom.ratelimit.SAFETY)")
    parser.add_argument("--redis-url", default=None, help="default: an embedded Redis-protocol server")
    parser.add_argument("--out", type=Path, default=DOC, help="where the table goes (default: docs/benchmarks/zoom.md)")
    args = parser.parse_args(argv)
    embedded = None
    redis_url = args.redis_url
    if not redis_url:
        from telemed.workers.queue.embedded_redis import EmbeddedRedisServer

        embedded = EmbeddedRedisServer.start()
        redis_url = embedded.url
    _quiet()
    try:
        with tempfile.TemporaryDirectory(prefix="telemed-zoom-bench-") as workdir:
            tokens = measure_tokens(redis_url, Path(workdir), args.processes, args.threads, args.seconds, args.lifetime)
            rates = measure_rates(redis_url, args.processes, args.threads, args.seconds, args.limit, args.safety)
    finally:
        if embedded is not None:
            embedded.stop()
    command = " ".join(["python -m benchmarks.zoom_limits", *(argv if argv is not None else __import__("sys").argv[1:])])
    note = (f"Run on {time.strftime('%Y-%m-%d')} with `{command}`: {mp.cpu_count()} CPUs, "
            f"{'the embedded Redis-protocol server' if embedded else 'Redis at --redis-url'}, SQLite, the "
            "simulator in the benchmark's process (5 ms latency in the token half).")
    table = markdown(tokens, rates, note)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
