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
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

from telemed.benchmarks.zoom_arms import DOCTOR, EMAIL, Arm, quiet, rate_process, run_processes, token_process
from telemed.benchmarks.zoom_log import busiest_second, created_arrivals, overlap_summary, shortest_span_ms
from telemed.benchmarks.zoom_pipeline import measure_pipeline
from telemed.benchmarks.zoom_report import RateRow, TokenRow, markdown
from telemed.foundation.cipher import Cipher
from telemed.store import zoom_tokens
from telemed.store.db import Database
from telemed.store.migrate import upgrade
from telemed.workers.queue.embedded_redis import EmbeddedRedisServer
from telemed.zoom.simulator import ZoomSimulator
from telemed.zoom.simulator.connect import connect_doctor

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "zoom.md"
USER_ARMS = ("telemed", "naive", "naive-strict")
ACCOUNT_ARMS = ("telemed", "per-process")


def measure_tokens(redis_url: str, workdir: Path, processes: int, threads: int, seconds: float,
                   lifetime: float, database_url: str | None = None) -> list[TokenRow]:

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
                results = run_processes(token_process, arm).results
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
    kind = "refresh_token" if token == "doctor" else "account"
    return overlap_summary((g["at"] for g in sim.grant_log(kind) if g["at"] >= since), lifetime)


def measure_rates(redis_url: str, processes: int, threads: int, seconds: float, limit: float,
                  safety: float = 0.0) -> list[RateRow]:
    """Both bare-thread arms; ``safety`` overrides the pacer's ``SAFETY`` (trials of
    another margin without editing it)."""
    rows = []
    for name in ("telemed", "unpaced"):
        with ZoomSimulator(rate_limits={"Medium": limit, "Light": limit * 1.5}) as sim:
            arm = Arm(name, processes, threads, seconds, sim.api_url, sim.oauth_url, ("", ""), redis_url,
                      f"bench-{uuid.uuid4().hex[:8]}", token=sim.issue_token(), limit=limit, safety=safety)
            arm = run_processes(rate_process, arm)
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
        embedded = EmbeddedRedisServer.start()
        redis_url = embedded.url
    quiet()
    try:
        with tempfile.TemporaryDirectory(prefix="telemed-zoom-bench-") as workdir:
            tokens = measure_tokens(redis_url, Path(workdir), args.processes, args.threads, args.seconds, args.lifetime)
            rates = measure_rates(redis_url, args.processes, args.threads, args.seconds, args.limit, args.safety)
    finally:
        if embedded is not None:
            embedded.stop()
    command = " ".join(["python -m benchmarks.zoom_limits", *(argv if argv is not None else sys.argv[1:])])
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
