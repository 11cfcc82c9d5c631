"""time.sleep under libfaketime with the monotonic clock left real (`make test-shifted`).

Debian's libfaketime 0.9.10 mishandles ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``
when FAKETIME_DONT_FAKE_MONOTONIC is set: it shifts the deadline by the fake offset and the
kernel answers EINVAL, so every ``time.sleep`` of Python >= 3.11 fails
(https://github.com/wolfcw/libfaketime/issues/426). Faking the monotonic clock instead
hangs every timed lock wait (``sem_clockwait`` is not intercepted, issue #390). So the
monotonic clock stays real and, in processes where sleeping is broken, ``time.sleep``
waits in ``select`` (a relative timeout libfaketime leaves alone).

Imported at start-up of every interpreter of the virtual environment through a ``.pth``
file that ``make test-shifted`` writes; it does nothing unless libfaketime is preloaded.
"""

from __future__ import annotations

import os
import select
import time
from typing import SupportsIndex


def _select_sleep(seconds: float | SupportsIndex) -> None:
    length = float(seconds)
    if length < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], length)


def install() -> bool:
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return False
    try:
        time.sleep(0.000001)
    except OSError:
        time.sleep = _select_sleep
        return True
    return False


install()
