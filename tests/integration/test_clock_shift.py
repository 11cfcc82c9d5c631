"""``make test-shifted`` really runs with our clock ahead of the services' (else it proves nothing).

The target sets ``TELEMED_TEST_CLOCK_SHIFT`` to the libfaketime offset it applies (``+400d``);
outside it these checks are skipped.
"""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
import redis

from tests.conftest import REAL_REDIS_URL

SHIFT = os.environ.get("TELEMED_TEST_CLOCK_SHIFT", "")

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not SHIFT, reason="only under make test-shifted")]


def test_our_clock_is_ahead_of_redis() -> None:
    if not REAL_REDIS_URL:
        pytest.skip("the embedded Redis runs on our own (shifted) clock: set TELEMED_TEST_REDIS_URL")
    days = re.fullmatch(r"\+(\d+)d", SHIFT)
    assert days, f"TELEMED_TEST_CLOCK_SHIFT={SHIFT!r}: expected +<days>d"
    client = redis.Redis.from_url(REAL_REDIS_URL)
    try:
        seconds, micros = client.time()
    finally:
        client.close()
    ahead = (time.time() - (seconds + micros / 1e6)) / 86400
    assert abs(ahead - int(days.group(1))) < 1, f"our clock is {ahead:.2f} days ahead of Redis's"


def test_sleeps_and_timeouts_still_take_real_time() -> None:
    started = time.monotonic()
    time.sleep(0.05)
    threading.Event().wait(0.05)
    assert 0.1 <= time.monotonic() - started < 5
