"""``telemed zoom-sim`` / ``python -m zoom.simulator``: run the Zoom simulator standalone."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from telemed.settings import is_loopback_host
from zoom.simulator.server import ZoomSimulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="telemed zoom-sim", description="Run a local Zoom API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=9900, help="port to bind, 0 for any free one (default: 9900)"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay added to every Zoom call (default: 0)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=3600,
        metavar="SECONDS",
        help="access token lifetime (default: 3600, like Zoom)",
    )
    parser.add_argument(
        "--daily-limit",
        type=int,
        default=None,
        metavar="N",
        help="create/update calls per host per UTC day (default: unlimited; Zoom: 100)",
    )
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--client-secret", default=None)
    parser.add_argument("--account-id", default=None)
    return parser


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (or until ``stop`` is set, for tests); returns an exit code."""
    args = build_parser().parse_args(argv)
    if args.latency < 0 or args.token_lifetime <= 0:
        print("--latency must be >= 0 and --token-lifetime > 0", file=sys.stderr)
        return 2
    credentials = {
        key: value
        for key, value in (
            ("client_id", args.client_id),
            ("client_secret", args.client_secret),
            ("account_id", args.account_id),
        )
        if value
    }
    sim = ZoomSimulator(
        host=args.host,
        port=args.port,
        latency_seconds=args.latency,
        token_lifetime_seconds=args.token_lifetime,
        daily_limit=args.daily_limit,
        **credentials,
    )
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if not is_loopback_host(args.host):
        print(
            "warning: the simulator is reachable beyond this machine and has no real security",
            file=sys.stderr,
        )
    print(f"Zoom simulator listening on {sim.base_url}")
    print(f"  TELEMED_ZOOM_API_URL={sim.api_url}")
    print(f"  TELEMED_ZOOM_OAUTH_URL={sim.oauth_url}")
    # Made-up credentials of the simulator itself, printed so they can be pasted into .env.
    print(f"  TELEMED_ZOOM_ACCOUNT_ID={sim.account_id}")
    print(f"  TELEMED_ZOOM_CLIENT_ID={sim.client_id}")
    print(f"  TELEMED_ZOOM_CLIENT_SECRET={sim.client_secret}")
    print(f"  admin: {sim.base_url}/_sim/meetings  /_sim/requests  /_sim/stats", flush=True)
    waiter = stop or threading.Event()
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
