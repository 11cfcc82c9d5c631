"""How hard the fuzz tests try: ``TELEMED_FUZZ_SCALE`` multiplies every test's example
count (``make fuzz`` uses 20); the default keeps the suite's budget."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

SCALE = max(1, int(os.environ.get("TELEMED_FUZZ_SCALE") or 1))


def fuzz(examples: int, *, fixtures: bool = False, shrink: bool = True) -> settings:
    """``fixtures``: the test uses a function-scoped fixture (a server) for all its examples.
    ``shrink=False`` for examples that take seconds each: report the failure as found."""
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if fixtures:
        checks.append(HealthCheck.function_scoped_fixture)
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples * SCALE, deadline=None, suppress_health_check=checks, phases=phases)
