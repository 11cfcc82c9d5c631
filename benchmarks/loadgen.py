"""HTTP load generator, run in a process of its own so its timing shares no interpreter
lock with the servers it measures.

* ``--mode open``: a request every 1/rate seconds for ``--seconds``, whatever the answers
  (open loop). Latency is counted from the *scheduled* send time, so a server that stalls
  is not hidden by a generator that waited for it (coordinated omission).
* ``--mode closed``: ``--count`` requests from ``--concurrency`` connections, each sending
  its next request when the last one was answered (as fast as the server takes them).

Each request is one signed booking event (``events.signing``, secret from the
``BENCH_INGRESS_SECRET`` environment variable). Only loopback URLs are accepted, and both
the number of requests and the time are bounded. Writes a JSON summary to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from telemed.benchmarks.bookings import base_time, bench_booking
from telemed.benchmarks.services import python_env
from telemed.events import signing
from telemed.foundation.urls import is_loopback_host

MAX_REQUESTS = 100_000
MAX_SECONDS = 600
REQUEST_TIMEOUT = 30.0


def event_body(prefix: str, n: int, base: datetime) -> bytes:
    return json.dumps(bench_booking(prefix, n, base), separators=(",", ":")).encode()


class Generator:
    def __init__(self, url: str, secret: str, prefix: str) -> None:
        self.url, self.secret, self.prefix = url, secret, prefix
        self.base = base_time()
        self.results: list[dict[str, Any]] = []

    async def send(self, client: httpx.AsyncClient, n: int, scheduled: float) -> None:
        body = event_body(self.prefix, n, self.base)
        signed = signing.sign(self.secret, body)
        sent = time.monotonic()
        try:
            response = await client.post(self.url, content=body, headers=signed.headers)
            status: int | str = response.status_code
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        done = time.monotonic()
        self.results.append({"n": n, "scheduled": scheduled, "sent": sent, "done": done, "status": status})

    async def open_loop(self, rate: float, seconds: float, warmup: int = 0) -> None:
        count = min(MAX_REQUESTS, max(1, round(rate * seconds)))
        async with _client(connections=1024) as client:
            if warmup:
                # First requests pay for imports, connections and caches: not what is measured.
                await asyncio.gather(*(self.send(client, MAX_REQUESTS + n, time.monotonic()) for n in range(warmup)))
                self.results.clear()
            start = time.monotonic() + 0.1
            tasks = []
            for n in range(count):
                scheduled = start + n / rate
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.send(client, n, scheduled)))
            await asyncio.gather(*tasks)

    async def closed_loop(self, count: int, concurrency: int) -> None:
        count = min(MAX_REQUESTS, count)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(count):
            queue.put_nowait(n)

        async def connection(client: httpx.AsyncClient) -> None:
            while not queue.empty():
                n = queue.get_nowait()
                await self.send(client, n, time.monotonic())

        async with _client(connections=concurrency) as client:
            await asyncio.gather(*(connection(client) for _ in range(concurrency)))


def _client(connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT,
                             limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("open", "closed"), required=True)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=0, help="requests sent (and not counted) before the open loop")
    parser.add_argument("--prefix", default="L-")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not is_loopback_host(urlsplit(args.url).hostname):
        parser.error("the load generator only sends to loopback addresses")
    if not 0 < args.seconds <= MAX_SECONDS or not 0 < args.rate <= 10_000:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS}] and --rate in (0, 10000]")
    secret = os.environ.get("BENCH_INGRESS_SECRET", "")
    generator = Generator(args.url, secret, args.prefix)
    started = time.monotonic()
    if args.mode == "open":
        run = generator.open_loop(args.rate, args.seconds, min(args.warmup, 1000))
    else:
        run = generator.closed_loop(args.count, max(1, args.concurrency))
    asyncio.run(asyncio.wait_for(run, timeout=MAX_SECONDS + REQUEST_TIMEOUT))
    summary = {"mode": args.mode, "started": started, "finished": time.monotonic(),
               "results": sorted(generator.results, key=lambda r: r["n"])}
    args.out.write_text(json.dumps(summary), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# The parent's side ---------------------------------------------------------------------


def run_process(url: str, *, mode: str, secret: str, workdir: Path, prefix: str, rate: float = 100,
                seconds: float = 10, count: int = 100, concurrency: int = 8, warmup: int = 0) -> dict[str, Any]:
    """Run the generator in a child process and return its summary."""
    import subprocess


    out = workdir / f"loadgen-{prefix.strip('-').lower()}.json"
    args = [sys.executable, "-m", "telemed.benchmarks.loadgen", "--url", url, "--mode", mode, "--rate", str(rate),
            "--seconds", str(seconds), "--count", str(count), "--concurrency", str(concurrency),
            "--warmup", str(warmup), "--prefix", prefix, "--out", str(out)]
    completed = subprocess.run(args, env=python_env(BENCH_INGRESS_SECRET=secret), cwd=workdir,
                               capture_output=True, timeout=MAX_SECONDS + 2 * REQUEST_TIMEOUT + 30)
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed: {completed.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def statuses(summary: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in summary["results"]:
        counts[str(result["status"])] = counts.get(str(result["status"]), 0) + 1
    return counts
