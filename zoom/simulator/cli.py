"""``telemed zoom-sim`` / ``python -m zoom.simulator``: run the Zoom simulator standalone."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence

from telemed.foundation.urls import is_loopback_host
from telemed.zoom.simulator.chaos import ENV_VAR, ChaosError, chaos_from_env, parse_chaos
from telemed.zoom.simulator.server import PRO_PLAN, ZoomSimulator


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
    parser.add_argument(
        "--plan",
        choices=("none", "pro"),
        default="none",
        help="per-second rate limits per category: none, or Zoom Pro's (Medium 20/s, Light 30/s)",
    )
    parser.add_argument(
        "--chaos",
        default=None,
        metavar="JSON",
        help=f"random faults, e.g. '{{\"error_rate\": 0.1}}' (default: ${ENV_VAR})",
    )
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--client-secret", default=None)
    parser.add_argument("--account-id", default=None)
    parser.add_argument("--oauth-client-id", default=None, help="the user-managed OAuth app")
    parser.add_argument("--oauth-client-secret", default=None)
    parser.add_argument(
        "--authorize-as",
        default=None,
        metavar="EMAIL",
        help="the Zoom user who approves consent screens (default: host@sim.example)",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (or until ``stop`` is set, for tests); returns an exit code."""
    args = build_parser().parse_args(argv)
    if args.latency < 0 or args.token_lifetime <= 0:
        print("--latency must be >= 0 and --token-lifetime > 0", file=sys.stderr)
        return 2
    try:
        chaos = parse_chaos(json.loads(args.chaos)) if args.chaos else chaos_from_env()
    except (ChaosError, ValueError) as bad:
        print(f"--chaos: {bad}", file=sys.stderr)
        return 2
    credentials = {
        key: value
        for key, value in (
            ("client_id", args.client_id),
            ("client_secret", args.client_secret),
            ("account_id", args.account_id),
            ("oauth_client_id", args.oauth_client_id),
            ("oauth_client_secret", args.oauth_client_secret),
        )
        if value
    }
    sim = ZoomSimulator(
        host=args.host,
        port=args.port,
        latency_seconds=args.latency,
        token_lifetime_seconds=args.token_lifetime,
        daily_limit=args.daily_limit,
        rate_limits=PRO_PLAN if args.plan == "pro" else None,
        chaos=chaos,
        **credentials,
    )
    if args.authorize_as:
        sim.authorize_as(args.authorize_as)
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
    print(f"  TELEMED_ZOOM_OAUTH_CLIENT_ID={sim.oauth_client_id}")
    print(f"  TELEMED_ZOOM_OAUTH_CLIENT_SECRET={sim.oauth_client_secret}")
    if chaos is not None:
        print(f"  chaos: {json.dumps(chaos.describe())}")
    print(
        f"  admin: {sim.base_url}/_sim/meetings  /_sim/requests  /_sim/stats  /_sim/chaos",
        flush=True,
    )
    waiter = stop or threading.Event()
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
