"""The canary scan: known secret values searched for everywhere they must not be.

A *canary* is a real secret of a run (each Zoom access token, start link ZAK, join link
``pwd`` and passcode the simulator handed out) or a patient's email and distinctive name,
with the appointment it belongs to. A *place* is something written or received during
the run: a process's log, one Redis key with its value, the SQLite file's bytes, one
PostgreSQL table's raw text, one mail, one webhook, one HTTP answer. Each place says which
canaries it may carry (a patient's own mail carries their join link; nothing else
carries a token), and the scan reports every other hit by name: "zak of X-0003 in
redis key telemed:meetings.msgs".

Matching is by token, not substring: the text is cut into ``[A-Za-z0-9_-]+`` runs and
email addresses, and a canary hits when one of them equals it. That is exact (a
10-character passcode never "matches" inside an encrypted blob) and fast enough for
hundreds of megabytes of logs against thousands of canaries.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(rb"[A-Za-z0-9_-]{6,}")
_EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

# Kinds of canary.
TOKEN = "zoom access token"  # nowhere, ever
ZAK = "start link zak"  # only the assigned doctor's own mail (without signed start links)
JOIN = "join link pwd"  # that appointment's patient and doctor mails, the booking system
PASSCODE = "passcode"  # that appointment's patient and doctor mails, the booking system's API
PATIENT_EMAIL = "patient email"  # that patient's own mail
PATIENT_NAME = "patient name"  # that patient's own mail and the doctor's
START_LINK = "signed start link"  # the assigned doctor's own mail
SECRET = "secret"  # anything else that must appear nowhere (API keys, client secrets)


@dataclass(frozen=True)
class Canary:
    kind: str
    value: str
    owner: str | None = None  # the appointment it belongs to

    @property
    def label(self) -> str:
        return f"{self.kind} of {self.owner}" if self.owner else self.kind


Rule = Callable[[Canary], bool]


def nothing(_: Canary) -> bool:
    return False


@dataclass
class Place:
    name: str
    data: bytes
    allows: Rule = nothing


@dataclass
class Canaries:
    items: dict[str, Canary] = field(default_factory=dict)  # value -> canary

    def add(self, kind: str, value: str | None, owner: str | None = None) -> None:
        if value and len(value) >= 6:
            self.items.setdefault(value, Canary(kind, value, owner))

    def count(self, kind: str) -> int:
        return sum(1 for c in self.items.values() if c.kind == kind)

    def __len__(self) -> int:
        return len(self.items)


def tokens(data: bytes) -> set[str]:
    found = {m.decode("ascii") for m in _TOKEN.findall(data)}
    found |= {m.decode("ascii").strip(".").lower() for m in _EMAIL.findall(data)}
    if b"%40" in data or b"%2B" in data:  # URL-encoded addresses (mailto:, query strings)
        found |= tokens(urllib.parse.unquote_to_bytes(data).replace(b"%", b" "))
    return found


def scan(places: Iterable[Place], canaries: Canaries) -> list[str]:
    """Every canary found where it is not allowed, as "label in place" (sorted)."""
    lowered = {value.lower() if "@" in value else value: c for value, c in canaries.items.items()}
    hits = set()
    for place in places:
        for token in tokens(place.data) & lowered.keys():
            canary = lowered[token]
            if not place.allows(canary):
                hits.add(f"{canary.label} in {place.name}")
    return sorted(hits)


# --- canaries from a run ----------------------------------------------------------------


def zoom_canaries(canaries: Canaries, sim: Any, owner_of_meeting: dict[int, str]) -> None:
    """Every secret the simulator handed out, tied to its appointment where one is known.

    ``owner_of_meeting``: Zoom meeting id → appointment id (from the markers).
    """
    for view in sim.meetings():
        owner = owner_of_meeting.get(int(view["id"]))
        meeting = view["meeting"]
        canaries.add(PASSCODE, meeting.get("password"), owner)
        canaries.add(JOIN, meeting.get("encrypted_password"), owner)
        for value in _query_values(str(meeting.get("join_url") or ""), "pwd"):
            canaries.add(JOIN, value, owner)
    handed_out = sim.secrets_handed_out()
    for secret in handed_out:  # links first: they say whose ZAK it is
        if "zak=" in secret:
            meeting_id = _meeting_id(secret)
            for value in _query_values(secret, "zak"):
                canaries.add(ZAK, value, owner_of_meeting.get(meeting_id) if meeting_id else None)
    for secret in handed_out:
        if "://" not in secret:
            canaries.add(TOKEN, secret)  # access tokens (anything already claimed keeps its kind)


def _query_values(url: str, name: str) -> list[str]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name, [])


def _meeting_id(url: str) -> int | None:
    match = re.search(r"/[sj]/(\d+)", url)
    return int(match.group(1)) if match else None


# --- places -------------------------------------------------------------------------------


def redis_places(client: Any, match: str | None = None) -> Iterator[Place]:
    """One place per key: its name and every member, field and value (binary-safe)."""
    for key in client.scan_iter(match=match, count=1000):
        kind = client.type(key)
        parts: list[bytes] = [key]
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            for k, v in client.hgetall(key).items():
                parts += [k, v]
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += client.zrange(key, 0, -1)
        elif kind == b"stream":
            for _, entry in client.xrange(key):
                for k, v in entry.items():
                    parts += [k, v]
        yield Place(f"redis key {key.decode(errors='replace')}", b"\n".join(p if isinstance(p, bytes) else
                                                                           str(p).encode() for p in parts))


def database_places(engine: Any, sqlite_path: str | None = None) -> Iterator[Place]:
    """PostgreSQL: every table's rows as PostgreSQL's own text (``select t::text``);
    SQLite: the file's raw bytes (with its journal), so freed pages count too."""
    import sqlalchemy

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            tables = conn.execute(sqlalchemy.text(
                "select tablename from pg_tables where schemaname = current_schema() order by 1")).scalars().all()
            for table in tables:
                rows = conn.execute(sqlalchemy.text(f'select t::text from "{table}" t')).scalars().all()
                yield Place(f"postgresql table {table}", "\n".join(rows).encode())
        return
    assert sqlite_path, "a SQLite database is scanned by its file"
    from pathlib import Path

    for suffix in ("", "-wal", "-journal", "-shm"):
        path = Path(sqlite_path + suffix)
        if path.exists():
            yield Place(f"sqlite file {path.name}", path.read_bytes())


def sqlite_path_of(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "sqlite" else None


_MESSAGE_ID = re.compile(r"<(?P<appointment>.+)\.v(?P<version>\d+)\.(?P<role>[a-z]+)\.(?P<kind>[^@]+)@")
PATIENT_MAY_SEE = frozenset({JOIN, PASSCODE, PATIENT_EMAIL, PATIENT_NAME})
DOCTOR_MAY_SEE = frozenset({JOIN, PASSCODE, PATIENT_NAME, START_LINK})


def mail_places(messages: Iterable[Any], *, raw_start_links: bool) -> Iterator[Place]:
    """One place per mail, every part decoded. A patient's mail may carry their own join
    link, passcode, name and address; the doctor's the same minus the patient's address,
    plus that meeting's start link when telemed mails raw start links (no
    ``TELEMED_PUBLIC_URL``); an admin alert or anything unrecognised: nothing."""
    from tests.support.mail_scan import everything

    for message in messages:
        message_id = str(message["Message-ID"] or "").strip()
        parsed = _MESSAGE_ID.match(message_id)
        name = f"mail {message_id or '(no Message-ID)'} to {message['To']}"
        data = everything(message).encode("utf-8", "replace")
        if parsed is None or parsed["role"] not in {"patient", "doctor"}:
            yield Place(name, data)
            continue
        owner, role = parsed["appointment"], parsed["role"]
        allowed = set(PATIENT_MAY_SEE if role == "patient" else DOCTOR_MAY_SEE)
        if role == "doctor" and raw_start_links:
            allowed.add(ZAK)
        yield Place(name, data, lambda c, owner=owner, allowed=frozenset(allowed): c.owner == owner and c.kind in allowed)
