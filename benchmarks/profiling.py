"""Where the workers' CPU goes: py-spy samples every worker process from outside (no code
change, no restart), then the stacks are summed by component and by function."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from telemed.benchmarks.report import table

# The first path component of a frame's file (py-spy prints paths relative to sys.path)
# decides its component; the deepest frame with a known component gets the sample.
COMPONENTS: dict[str, str] = {
    **dict.fromkeys(["sqlalchemy", "sqlmodel", "psycopg", "psycopg_binary", "sqlite3", "alembic", "store"],
                    "database (SQLAlchemy, driver, store/)"),
    "redis": "Redis client",
    "dramatiq": "Dramatiq (consumer, middleware, messages)",
    **dict.fromkeys(["requests", "urllib3", "http", "ssl", "certifi", "charset_normalizer", "idna", "zoom"],
                    "HTTP to Zoom (requests, zoom/)"),
    **dict.fromkeys(["jinja2", "markupsafe", "email", "smtplib", "icalendar"],
                    "mail: render and send"),
    **dict.fromkeys(["cryptography"], "field encryption (Fernet)"),
    **dict.fromkeys(["structlog", "logging"], "logging (structlog, redaction)"),
    **dict.fromkeys(["json", "pydantic", "pydantic_core", "events"], "JSON and validation"),
    "prometheus_client": "metrics",
    **dict.fromkeys(["uvicorn", "starlette", "fastapi", "anyio", "asyncio", "h11", "httptools", "sniffio"],
                    "HTTP server (uvicorn, Starlette, FastAPI, asyncio)"),
}
# More specific paths first: these belong to a component other than their package's.
PATH_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("workers/notifier/", "mail: render and send"),
    ("workers/delivery", "mail: render and send"),
    ("telemed/logging", "logging (structlog, redaction)"),
    ("telemed/log_", "logging (structlog, redaction)"),  # log_handlers, log_processors
    ("telemed/redaction", "logging (structlog, redaction)"),
    ("workers/log_context", "logging (structlog, redaction)"),
    ("store/crypto", "field encryption (Fernet)"),
    ("workers/metrics", "metrics"),
)
OWN = ("workers/", "store/", "events/", "zoom/", "telemed/", "web/")
ENTRY_POINTS = ("telemed/__main__", "telemed/cli", "telemed/worker")  # below every sample: no information


@dataclass
class Profile:
    samples: int = 0
    by_component: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    own_inclusive: Counter[str] = field(default_factory=Counter)
    error: str | None = None


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


class Recorder:
    """``py-spy record`` attached to a process tree until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        self.process: subprocess.Popen[bytes] | None = None
        self.error: str | None = None
        binary = py_spy()
        if binary is None:
            self.error = "py-spy is not installed (pip install 'telemed[bench]')"
            return
        self.process = subprocess.Popen(
            # --gil: only threads holding the interpreter lock, i.e. running Python; a thread
            # waiting on PostgreSQL, Redis or Zoom with the lock released is not CPU spent.
            [binary, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil", "--rate", str(rate),
             "--format", "raw", "--output", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> Profile:
        if self.process is None:
            return Profile(error=self.error)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            output, _ = self.process.communicate()
        if not self.out.exists():
            text = output.decode(errors="replace").strip()
            return Profile(error=f"py-spy wrote no profile: {text[-500:] or 'no output'}")
        return summarize(self.out.read_text(errors="replace"))


def _file_of(frame: str) -> str:
    # "function (path/to/file.py:123)"
    start = frame.rfind(" (")
    return frame[start + 2:].rsplit(":", 1)[0] if start >= 0 else ""


def _component(path: str) -> str | None:
    for prefix, component in PATH_COMPONENTS:
        if path.startswith(prefix):
            return component
    return COMPONENTS.get(path.split("/")[0].removesuffix(".py"))


def _function(frame: str) -> str:
    name, _, location = frame.partition(" (")
    return f"{name} ({location.rsplit(':', 1)[0]})" if location else name


def summarize(raw: str) -> Profile:
    profile = Profile()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        profile.samples += count
        component = next((c for c in (_component(_file_of(f)) for f in reversed(frames)) if c), "other")
        own = [f for f in frames if _file_of(f).startswith(OWN) and not _file_of(f).startswith(ENTRY_POINTS)]
        if component == "other" and own:
            component = "telemed's own code"
        profile.by_component[component] += count
        profile.self_time[_function(frames[-1])] += count
        for function in {_function(f) for f in own}:
            profile.own_inclusive[function] += count
    return profile


def profile_markdown(profile: Profile, cpu_ms: float, unit: str, whose: str) -> str:
    """Tables of a profile: components, hottest functions, telemed's own functions."""
    if profile.error or not profile.samples:
        return f"Profile: not taken ({profile.error or 'no samples'})."
    total = profile.samples
    components = table(["component (deepest frame that belongs to it)", f"share of {whose}", f"≈ ms per {unit}"],
                       [[name, f"{100 * n / total:.1f} %", f"{cpu_ms * n / total:.2f}"]
                        for name, n in profile.by_component.most_common()])
    hot = table(["function (self time)", "share"],
                [[f"`{name}`", f"{100 * n / total:.1f} %"] for name, n in profile.self_time.most_common(12)])
    own = table(["telemed function (inclusive)", "share"],
                [[f"`{name}`", f"{100 * n / total:.1f} %"] for name, n in profile.own_inclusive.most_common(12)])
    return (f"Samples at 100 Hz of the threads holding the interpreter lock ({total} samples; waiting on "
            f"PostgreSQL, Redis or Zoom with the lock released is not counted). The milliseconds split the "
            f"{whose} per {unit} measured above by these shares.\n\n{components}\n\n{hot}\n\n{own}")
