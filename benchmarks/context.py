"""What the runner hands each benchmark."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemed.benchmarks.scale import Scale
from telemed.benchmarks.services import Services


@dataclass
class Context:
    services: Services
    scale: Scale
    out: Path  # where the report and plots go
    workdir: Path  # scratch: logs, SQLite files, mail
    settings: dict[str, str] = field(default_factory=dict)  # what the report lists
    shared: dict[str, Any] = field(default_factory=dict)  # results one benchmark leaves for another
    log: Callable[[str], None] = field(default=lambda message: print(message, file=sys.stderr, flush=True))

    def step(self, message: str) -> None:
        self.log(f"[bench {time.strftime('%H:%M:%S')}] {message}")
