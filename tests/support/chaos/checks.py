"""The verdict of a crash run: what the store, Zoom and the inboxes must show, checked
one claim at a time, each with what was expected and what was found.

The claims (docs/proving.md, part 1):

- no event lost: every event got a 202, is in the inbox and was applied or recorded as stale;
- every appointment is at its newest version and desired state, synced;
- exactly one live Zoom meeting per active appointment, at the newest schedule, and it is
  the one the store records; none for cancelled appointments; no other live meeting
  carrying our marker (no orphans, no duplicates);
- every notice owed, per (appointment, version, role, kind), is sent and reached the right
  inbox; each active appointment's patient and doctor were last told the newest version,
  each cancelled one's (if they were ever invited) that it is off; nothing failed;
- duplicate mails (one notice arriving twice) are counted and never more than the kills;
- each active appointment's patient is the one registrant of its live meeting (registered
  once, across kills and lost answers), the store records that registrant's own link, and
  the patient's newest mail carries it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sqlmodel import select

from telemed.store.db import Database
from telemed.store.models import Appointment, InboxEvent, Meeting, OutboxMessage, ProvisioningIntent
from telemed.zoom import policy
from tests.support.chaos.plan import ChaosPlan
from tests.support.mail_scan import everything

EVENT_KINDS = {"invite", "updated", "cancelled"}


@dataclass
class Check:
    name: str
    expected: str
    observed: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, expected: str, observed: str, problems: list[str]) -> None:
        self.checks.append(Check(name, expected, observed, problems))

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self, limit: int = 15) -> str:
        lines = []
        for check in self.checks:
            if not check.ok:
                shown = check.problems[:limit]
                more = len(check.problems) - len(shown)
                lines.append(f"{check.name}: " + "; ".join(shown) + (f"; … {more} more" if more else ""))
        return "\n".join(lines)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def store_snapshot(database: Database) -> dict[str, Any]:
    with database.session() as s:
        return {
            "inbox": {e.event_id: e.status for e in s.exec(select(InboxEvent))},
            "appointments": {a.id: a for a in s.exec(select(Appointment))},
            "meetings": {m.appointment_id: m for m in s.exec(select(Meeting))},
            "outbox": list(s.exec(select(OutboxMessage))),
            "open_intents": [i.appointment_id for i in s.exec(select(ProvisioningIntent))
                             if i.open_for is not None],
        }


def settled(database: Database, plan: ChaosPlan, sim: Any) -> bool:
    """Nothing left to do: the moment to stop waiting and judge."""
    snap = store_snapshot(database)
    if any(status == "pending" for status in snap["inbox"].values()):
        return False
    if len(snap["inbox"]) < plan.events:
        return False
    for history in plan.histories.values():
        appointment = snap["appointments"].get(history.appointment_id)
        if appointment is None or appointment.version < history.final_version:
            return False
        if appointment.synced_version < appointment.version:
            return False
    if any(m.status == "pending" and m.kind in EVENT_KINDS for m in snap["outbox"]):
        return False
    live = _live_by_owner(sim, plan)
    return all(len(live.get(a, [])) == (0 if h.cancelled else 1) for a, h in plan.histories.items()) and not live.get(None)


def _live_by_owner(sim: Any, plan: ChaosPlan) -> dict[str | None, list[dict[str, Any]]]:
    markers = {policy.make_marker(a): a for a in plan.histories}
    found: dict[str | None, list[dict[str, Any]]] = {}
    for view in sim.meetings(include_deleted=False):
        agenda = str(view["meeting"].get("agenda") or "")
        owner = next((a for marker, a in markers.items() if marker in agenda), None)
        found.setdefault(owner, []).append(view)
    return found


def owner_of_meetings(sim: Any, plan: ChaosPlan) -> dict[int, str]:
    markers = {policy.make_marker(a): a for a in plan.histories}
    owners = {}
    for view in sim.meetings():
        agenda = str(view["meeting"].get("agenda") or "")
        owner = next((a for marker, a in markers.items() if marker in agenda), None)
        if owner is not None:
            owners[int(view["id"])] = owner
    return owners


def judge(plan: ChaosPlan, database: Database, sim: Any, mails: list[EmailMessage], *, accepted: set[str],
          kills: int, doctor_emails: dict[str, str]) -> Verdict:
    verdict = Verdict()
    snap = store_snapshot(database)
    _events(verdict, plan, snap, accepted)
    _appointments(verdict, plan, snap)
    _meetings(verdict, plan, snap, sim)
    _notifications(verdict, plan, snap, mails, kills, doctor_emails)
    _registrants(verdict, plan, snap, sim, mails)
    return verdict


def _registrants(verdict: Verdict, plan: ChaosPlan, snap: dict[str, Any], sim: Any,
                 mails: list[EmailMessage]) -> None:
    live = _live_by_owner(sim, plan)
    by_id = {str(m["Message-ID"]).strip(): m for m in mails}
    newest: dict[str, OutboxMessage] = {}
    for r in snap["outbox"]:
        if r.role == "patient" and r.status == "sent" and r.kind in {"invite", "updated"} and (
                r.appointment_id not in newest or (r.version, r.id) > (newest[r.appointment_id].version,
                                                                     newest[r.appointment_id].id)):
            newest[r.appointment_id] = r
    problems: list[str] = []
    active = [a for a, h in plan.histories.items() if not h.cancelled]
    registrations = 0
    for a in active:
        found, stored = live.get(a, []), snap["meetings"].get(a)
        if len(found) != 1 or stored is None:
            continue  # reported by the meeting checks
        everyone = found[0].get("registrants") or []
        registrations += len(everyone)
        emails = [r["email"].lower() for r in everyone]
        if emails != [plan.histories[a].patient_email.lower()]:
            problems.append(f"{a}: registrants {len(emails)} ({'patient' if plan.histories[a].patient_email.lower() in emails else 'not the patient'})")
            continue
        if stored.registration != "registered" or stored.registrant_join_url != everyone[0].get("join_url"):
            problems.append(f"{a}: the store records {stored.registration}, not the registrant's own link")
            continue
        row = newest.get(a)
        mail = by_id.get(_message_id(row)) if row is not None else None
        if mail is not None and stored.registrant_join_url not in everything(mail):
            problems.append(f"{a}: the patient's newest mail lacks their own link")
    verdict.add("one registrant per patient", f"{len(active)}, each the patient, recorded and mailed",
                f"{registrations} registration(s) in Zoom", problems)
    verdict.numbers.update(registrants=registrations)


def _events(verdict: Verdict, plan: ChaosPlan, snap: dict[str, Any], accepted: set[str]) -> None:
    planned = {e["event_id"] for h in plan.histories.values() for e in h.events}
    problems = [f"{e}: no 202" for e in sorted(planned - accepted)]
    problems += [f"{e}: not in the inbox" for e in sorted(planned - snap["inbox"].keys())]
    problems += [f"{e}: still {s}" for e, s in sorted(snap["inbox"].items()) if s not in {"applied", "stale"}]
    statuses = Counter(snap["inbox"].values())
    verdict.add("no event lost", f"{len(planned)} accepted, in the inbox, applied or stale",
                f"{len(accepted & planned)} accepted; inbox {len(snap['inbox'])}: "
                + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())), problems)


def _appointments(verdict: Verdict, plan: ChaosPlan, snap: dict[str, Any]) -> None:
    problems = []
    for a, history in plan.histories.items():
        row = snap["appointments"].get(a)
        if row is None:
            problems.append(f"{a}: missing")
            continue
        want_state = "cancelled" if history.cancelled else "provisioned"
        if (row.version, row.synced_version, row.state) != (history.final_version, history.final_version, want_state):
            problems.append(f"{a}: v{row.version} synced v{row.synced_version} {row.state} "
                            f"(want v{history.final_version} {want_state})")
        elif not history.cancelled and row.start_time != history.final_start:
            problems.append(f"{a}: starts {row.start_time} (want {history.final_start})")
    states = Counter(row.state for row in snap["appointments"].values())
    verdict.add("newest version wins", "every appointment at its last version, synced",
                ", ".join(f"{n} {s}" for s, n in sorted(states.items())), problems)


def _meetings(verdict: Verdict, plan: ChaosPlan, snap: dict[str, Any], sim: Any) -> None:
    live = _live_by_owner(sim, plan)
    problems = []
    active = [a for a, h in plan.histories.items() if not h.cancelled]
    for a in active:
        found = live.get(a, [])
        stored = snap["meetings"].get(a)
        if len(found) != 1:
            problems.append(f"{a}: {len(found)} live meetings in Zoom")
            continue
        view = found[0]
        if view["meeting"].get("start_time") != _z(plan.histories[a].final_start):
            problems.append(f"{a}: Zoom start {view['meeting'].get('start_time')} "
                            f"(want {_z(plan.histories[a].final_start)})")
        if stored is None or stored.deleted_at is not None or stored.zoom_meeting_id != int(view["id"]):
            problems.append(f"{a}: the store records another meeting than Zoom's live one")
    verdict.add("one live meeting per active appointment", f"{len(active)}, each at its newest time",
                f"{sum(1 for a in active if len(live.get(a, [])) == 1)} with exactly one", problems)

    cancelled = [a for a, h in plan.histories.items() if h.cancelled]
    problems = [f"{a}: {len(live[a])} live meeting(s)" for a in cancelled if live.get(a)]
    problems += [f"{a}: the store still has a live meeting" for a in cancelled
                 if (m := snap["meetings"].get(a)) is not None and m.deleted_at is None]
    verdict.add("no meeting for cancelled ones", f"0 live of {len(cancelled)}",
                f"{sum(len(live.get(a, [])) for a in cancelled)} live", problems)

    strays = live.get(None, [])
    owned = {m.zoom_meeting_id for m in snap["meetings"].values() if m.deleted_at is None}
    orphans = [v for vs in live.values() for v in vs if int(v["id"]) not in owned]
    problems = [f"meeting {v['id']} (agenda {str(v['meeting'].get('agenda'))[:40]!r})" for v in orphans]
    problems += [f"meeting {v['id']} carries no marker of ours" for v in strays]
    problems += [f"{a}: provisioning intent still open" for a in snap["open_intents"]]
    verdict.add("no orphan meetings", "every live Zoom meeting owned; no open intent",
                f"{len(orphans)} orphan(s), {len(snap['open_intents'])} open intent(s)", problems)


def _message_id(row: OutboxMessage) -> str:
    return f"<{row.appointment_id}.v{row.version}.{row.role}.{row.kind}.{row.token}@telemed.invalid>"


def _notifications(verdict: Verdict, plan: ChaosPlan, snap: dict[str, Any], mails: list[EmailMessage],
                   kills: int, doctor_emails: dict[str, str]) -> None:
    rows = [r for r in snap["outbox"] if r.kind in EVENT_KINDS and r.role in {"patient", "doctor"}]
    received: dict[str, list[EmailMessage]] = {}
    for mail in mails:
        received.setdefault(str(mail["Message-ID"]).strip(), []).append(mail)
    statuses = Counter(r.status for r in rows)
    problems = [f"{r.appointment_id} v{r.version} {r.role} {r.kind}: {r.status}"
                for r in rows if r.status not in {"sent", "superseded"}]
    for r in rows:
        if r.status != "sent":
            continue
        got = received.get(_message_id(r), [])
        want_to = (plan.histories[r.appointment_id].patient_email if r.role == "patient"
                   else doctor_emails[snap["appointments"][r.appointment_id].doctor_id])
        if not got:
            problems.append(f"{r.appointment_id} v{r.version} {r.role} {r.kind}: marked sent, never received")
        elif any(want_to.lower() not in str(m["To"]).lower() for m in got):
            problems.append(f"{r.appointment_id} v{r.version} {r.role} {r.kind}: went to someone else")
    # What each person was told last is the newest state.
    last: dict[tuple[str, str], OutboxMessage] = {}
    for r in rows:
        if r.status == "sent" and (key := (r.appointment_id, r.role)) and (
                key not in last or r.version > last[key].version):
            last[key] = r
    for a, history in plan.histories.items():
        for role in ("patient", "doctor"):
            told = last.get((a, role))
            if history.cancelled:
                # Whoever heard of it hears of the cancel; whoever never did hears nothing.
                if told is not None and told.kind != "cancelled":
                    problems.append(f"{a} {role}: invited, never told of the cancel")
            elif told is None or told.version != history.final_version or told.kind not in {"invite", "updated"}:
                problems.append(f"{a} {role}: last told {told.kind + ' v' + str(told.version) if told else 'nothing'}"
                                f" (want v{history.final_version})")
    verdict.add("every notice delivered", "all sent or superseded; each person last told the newest",
                ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())), problems)

    duplicates = sum(len(got) - 1 for got in received.values() if len(got) > 1)
    known = {_message_id(r) for r in rows if r.status == "sent"}
    unrecorded = sum(len(got) for mid, got in received.items() if mid not in known and ".admin." not in mid)
    extra = duplicates + unrecorded
    verdict.add("duplicate mails ≤ kills", f"≤ {kills}", f"{duplicates} duplicate(s), {unrecorded} unrecorded",
                [f"{extra} extra mails for {kills} kills"] if extra > kills else [])
    verdict.numbers.update(mails=len(mails), duplicate_mails=duplicates, unrecorded_mails=unrecorded,
                           admin_alerts=sum(1 for r in snap["outbox"] if r.role == "admin"))
