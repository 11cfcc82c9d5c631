"""Random misbehaviour for load and crash tests: latency, 5xx, 429, timeouts, resets, drops.

A :class:`ChaosProfile` is set from the environment (``ZOOM_SIM_CHAOS``, JSON), the CLI
(``--chaos JSON``), ``POST /_sim/chaos`` or :meth:`ZoomSimulator.set_chaos`. Each API
request draws once: at most one fault per request, with the rates adding up (so
``error_rate 0.1`` and ``rate_limit_rate 0.05`` fail 15 % of requests). OAuth endpoints
are spared unless ``include_oauth`` is set, so a test of API retries is not a test of
token renewal by accident. ``seed`` makes a run repeatable.

Example::

    {"latency": {"kind": "exponential", "mean": 0.05, "max": 1.0},
     "error_rate": 0.1, "rate_limit_rate": 0.05, "timeout_rate": 0.02,
     "reset_rate": 0.02, "drop_after_create_rate": 0.05, "seed": 7}
"""

from __future__ import annotations

import json
import os
import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

ENV_VAR = "ZOOM_SIM_CHAOS"
LATENCY_KINDS = ("fixed", "uniform", "exponential")
RATES = ("error_rate", "rate_limit_rate", "timeout_rate", "reset_rate", "drop_after_create_rate")


class ChaosError(ValueError):
    """A chaos profile field is malformed; the message names the field."""


@dataclass(frozen=True)
class Latency:
    kind: str = "fixed"
    value: float = 0.0  # fixed
    low: float = 0.0  # uniform
    high: float = 0.0
    mean: float = 0.0  # exponential, capped at max
    max: float = 5.0

    def sample(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        if self.kind == "exponential":
            return min(self.max, rng.expovariate(1 / self.mean)) if self.mean > 0 else 0.0
        return self.value


@dataclass(frozen=True)
class ChaosProfile:
    latency: Latency | None = None
    error_rate: float = 0.0  # 500/502/503/504 with Zoom's error body
    rate_limit_rate: float = 0.0  # 429 shaped like Zoom's per-second limit
    timeout_rate: float = 0.0  # hold the connection, never answer
    timeout_seconds: float = 30.0
    reset_rate: float = 0.0  # reset the connection before doing anything
    drop_after_create_rate: float = 0.0  # create the meeting (or registrant), then reset instead of answering
    include_oauth: bool = False
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    @property
    def active(self) -> bool:
        return self.latency is not None or any(getattr(self, name) > 0 for name in RATES)

    def delay(self) -> float:
        if self.latency is None:
            return 0.0
        with self._lock:
            return max(0.0, self.latency.sample(self._rng))

    def draw(self, method: str, path: str) -> str | None:
        """The fault for this request: error, rate_limit, timeout, reset, drop, or None."""
        if path.startswith("/_sim/") or (path.startswith("/oauth/") and not self.include_oauth):
            return None
        # A create whose answer can be lost after the work is done: a meeting, or a registrant.
        is_create = method == "POST" and (
            (path.startswith("/v2/users/") and path.endswith("/meetings"))
            or (path.startswith("/v2/meetings/") and path.endswith("/registrants")))
        with self._lock:
            roll = self._rng.random()
            choice = self._rng.choice((500, 502, 503, 504))
        for name, fault in (
            ("error_rate", f"error:{choice}"),
            ("rate_limit_rate", "rate_limit"),
            ("timeout_rate", "timeout"),
            ("reset_rate", "reset"),
            ("drop_after_create_rate", "drop"),
        ):
            rate = getattr(self, name)
            if name == "drop_after_create_rate" and not is_create:
                continue
            if roll < rate:
                return fault
            roll -= rate
        return None

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in RATES}
        data.update(
            timeout_seconds=self.timeout_seconds, include_oauth=self.include_oauth, seed=self.seed,
            latency=asdict(self.latency) if self.latency is not None else None,
        )
        return data


def parse_chaos(spec: Any) -> ChaosProfile:
    """Build a profile from a JSON object, naming the first bad field."""
    if not isinstance(spec, dict):
        raise ChaosError("chaos: expected a JSON object")
    known = {"latency", "timeout_seconds", "include_oauth", "seed", *RATES}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ChaosError(f"chaos.{unknown[0]}: unknown field (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    total = 0.0
    for name in RATES:
        if name in spec:
            rate = _number(spec[name], f"chaos.{name}")
            if not 0 <= rate <= 1:
                raise ChaosError(f"chaos.{name}: must be between 0 and 1")
            values[name] = rate
            total += rate
    if total > 1:
        raise ChaosError("chaos: the rates add up to more than 1")
    if "timeout_seconds" in spec:
        values["timeout_seconds"] = _number(spec["timeout_seconds"], "chaos.timeout_seconds")
        if values["timeout_seconds"] <= 0:
            raise ChaosError("chaos.timeout_seconds: must be positive")
    if "include_oauth" in spec:
        if not isinstance(spec["include_oauth"], bool):
            raise ChaosError("chaos.include_oauth: must be true or false")
        values["include_oauth"] = spec["include_oauth"]
    if spec.get("seed") is not None:
        if isinstance(spec["seed"], bool) or not isinstance(spec["seed"], int):
            raise ChaosError("chaos.seed: must be an integer")
        values["seed"] = spec["seed"]
    if spec.get("latency") is not None:
        values["latency"] = _latency(spec["latency"])
    return ChaosProfile(**values)


def chaos_from_env(environ: dict[str, str] | None = None) -> ChaosProfile | None:
    raw = (environ if environ is not None else os.environ).get(ENV_VAR, "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except ValueError:
        raise ChaosError(f"{ENV_VAR}: not valid JSON") from None
    return parse_chaos(spec)


def _latency(spec: Any) -> Latency:
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = {"kind": "fixed", "value": spec}
    if not isinstance(spec, dict):
        raise ChaosError("chaos.latency: expected seconds or an object with a kind")
    kind = spec.get("kind", "fixed")
    if kind not in LATENCY_KINDS:
        raise ChaosError(f"chaos.latency.kind: must be one of {', '.join(LATENCY_KINDS)}")
    fields = {"fixed": ("value",), "uniform": ("low", "high"), "exponential": ("mean", "max")}[kind]
    values: dict[str, float] = {}
    for name in set(spec) - {"kind"}:
        if name not in fields:
            raise ChaosError(f"chaos.latency.{name}: not used by kind {kind!r}")
        values[name] = _number(spec[name], f"chaos.latency.{name}")
        if values[name] < 0:
            raise ChaosError(f"chaos.latency.{name}: must not be negative")
    latency = Latency(kind=kind, **values)
    if kind == "uniform" and latency.low > latency.high:
        raise ChaosError("chaos.latency.low: must not exceed high")
    return latency


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChaosError(f"{where}: must be a number")
    return float(value)
