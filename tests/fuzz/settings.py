"""How hard the fuzz tests try: ``TELEMED_FUZZ_SCALE`` multiplies every test's example
count (``make fuzz`` uses 20); the default keeps the suite's budget."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = max(1, int(os.environ.get("TELEMED_FUZZ_SCALE") or 1))


def fuzz(examples: int, *, fixtures: bool = False) -> settings:
    """``fixtures``: the test uses a function-scoped fixture (a server) for all its examples."""
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if fixtures:
        checks.append(HealthCheck.function_scoped_fixture)
    return settings(max_examples=examples * SCALE, deadline=None, suppress_health_check=checks)
