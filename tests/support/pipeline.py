"""A whole pipeline for integration tests: real worker processes, the Zoom simulator over
HTTP, a real SMTP server, and the test's own Redis namespace and fresh database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from sqlmodel import select

from telemed.events.publish import Publisher, PublishResult
from telemed.foundation.cipher import Cipher
from telemed.store.db import Database
from telemed.store.models import Appointment, InboxEvent, Meeting, OutboxMessage

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Pipeline:
    redis_url: str
    namespace: str
    database_url: str
    zoom_api_url: str
    zoom_oauth_url: str
    zoom_credentials: dict[str, str]
    smtp_url: str | None
    workdir: Path
    processes: int = 1
    threads: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.database = Database(self.database_url, cipher=Cipher([self.secret_key]))
        self.broker = RedisBroker(url=self.redis_url, namespace=self.namespace)
        self.publisher = Publisher(database=self.database, enqueue=self._enqueue_event)
        self.log_path = self.workdir / "worker.log"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
        env.update({
            "TELEMED_REDIS_URL": self.redis_url,
            "TELEMED_REDIS_NAMESPACE": self.namespace,
            "TELEMED_DATABASE_URL": self.database_url,
            "TELEMED_SECRET_KEYS": self.secret_key,
            "TELEMED_DATA_DIR": str(self.workdir / "data"),
            "TELEMED_MAIL_DIR": str(self.workdir / "mail"),
            "TELEMED_ZOOM_API_URL": self.zoom_api_url,
            "TELEMED_ZOOM_OAUTH_URL": self.zoom_oauth_url,
            "TELEMED_ZOOM_ACCOUNT_ID": self.zoom_credentials["account_id"],
            "TELEMED_ZOOM_CLIENT_ID": self.zoom_credentials["client_id"],
            "TELEMED_ZOOM_CLIENT_SECRET": self.zoom_credentials["client_secret"],
            "TELEMED_LOG_FORMAT": "json",
            "TELEMED_LOG_LEVEL": "DEBUG",
            "PYTHONPATH": str(REPO),
        })
        if self.smtp_url:
            env["TELEMED_SMTP_URL"] = self.smtp_url
        env.update(self.extra_env)
        return env

    # processes ---------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the file
            process = subprocess.Popen(
                [sys.executable, "-m", "telemed", "worker", "--processes", str(self.processes),
                 "--threads", str(self.threads)],
                env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(process)
        return process

    def run_cli(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "telemed", *args], env=self.env, cwd=self.workdir,
                              input=input, capture_output=True, timeout=timeout)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.broker.close()
        self.database.dispose()

    def worker_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # publishing ----------------------------------------------------------------------

    def _enqueue_event(self, event_id: str) -> None:
        self.broker.enqueue(Message(queue_name="events", actor_name="process_event", args=(event_id,),
                                    kwargs={}, options={}))

    def publish(self, events: Iterable[dict[str, Any]]) -> list[PublishResult]:
        return [self.publisher.publish(event) for event in events]

    # observing -----------------------------------------------------------------------

    def wait_until(self, condition: Callable[[], bool], timeout: float = 60, what: str = "the pipeline") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for process in self.workers:
                if process.poll() is not None:
                    raise AssertionError(f"worker exited with {process.returncode}:\n{self.worker_log()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n--- worker log tail ---\n{self.worker_log()[-4000:]}")

    def settled(self) -> bool:
        """Every event processed, every appointment synced, every notice sent or settled."""
        with self.database.session() as s:
            if s.exec(select(InboxEvent).where(InboxEvent.status == "pending")).first():
                return False
            for appointment in s.exec(select(Appointment)):
                if appointment.synced_version < appointment.version:
                    return False
            return s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")).first() is None

    def wait_settled(self, timeout: float = 60) -> None:
        self.wait_until(self.settled, timeout=timeout, what="every event, meeting and notice to settle")

    def appointments(self) -> dict[str, Appointment]:
        with self.database.session() as s:
            return {a.id: a for a in s.exec(select(Appointment))}

    def meetings(self) -> dict[str, Meeting]:
        with self.database.session() as s:
            return {m.appointment_id: m for m in s.exec(select(Meeting))}

    def outbox(self) -> list[OutboxMessage]:
        with self.database.session() as s:
            return list(s.exec(select(OutboxMessage)))


def mails_to(messages: Iterable[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if address in str(m["To"])]


def body_text(message: EmailMessage) -> str:
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)
