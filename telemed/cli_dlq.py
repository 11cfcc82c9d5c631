"""``telemed dlq list | show ID | retry ID|--all | purge``: messages that failed for good.

Each takes ``--clinic ID`` (default: the default clinic) and sees that clinic's dead letters
only (``workers.queue.ownership``), their arguments in the clinic's own ids. A dead letter
whose clinic can no longer be told (its row is gone) counts as the default clinic's: the
deployment's own operators see it, and no other clinic does.
"""

from __future__ import annotations

import json
import sys

import click

from telemed.clinic_scope import clinic_option, require_clinic
from telemed.foundation import dead_letters
from telemed.foundation.tenancy import DEFAULT_CLINIC, external_id
from telemed.logging import setup_cli_logging as _setup_logging
from telemed.settings import get_settings


def _redis():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import redis_client

    return redis_client(get_settings())


def _known_queues() -> tuple[str, ...]:
    # lazy: telemed --help must not import the whole pipeline
    from telemed.workers.queue.work_queue import QUEUES

    return QUEUES


def _resend(letter: dead_letters.DeadLetter) -> None:
    # lazy: telemed --help must not import the whole pipeline
    from dramatiq.message import Message

    from telemed.bootstrap import broker
    from telemed.workers.queue.clinic_gate import CLINIC_OPTION
    from telemed.workers.queue.work_queue import clinic_of_work

    # Through the clinic gate, as its clinic's work: a retry of many dead letters of one
    # clinic waits its turn behind that clinic's limit, not in front of everyone.
    clinic = clinic_of_work(tuple(letter.args))
    broker(get_settings()).enqueue(Message(queue_name=letter.queue, actor_name=letter.actor, args=tuple(letter.args),
                                  kwargs=letter.kwargs, options={CLINIC_OPTION: clinic} if clinic else {}))


def _database():  # type: ignore[no-untyped-def]
    # lazy: telemed --help must not import the whole pipeline
    from telemed.bootstrap import database

    return database(get_settings())


def _of_clinic(clinic_id: str, letters: list[dead_letters.DeadLetter]) -> list[dead_letters.DeadLetter]:
    """The letters that belong to ``clinic_id`` (checked to exist first)."""
    # lazy: telemed --help must not import the whole pipeline
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from telemed.workers.queue.ownership import owners

    database = _database()
    try:
        require_clinic(database, clinic_id)
        found = owners(database, [(letter.actor, letter.args) for letter in letters]) if letters else []
    except (OperationalError, ProgrammingError) as exc:  # the store tells whose a numbered letter is
        click.echo(f"error: the database is not reachable or not set up ({type(exc.orig).__name__}); "
                   "check TELEMED_DATABASE_URL", err=True)
        sys.exit(2)
    return [letter for letter, owner in zip(letters, found, strict=True)
            if owner == clinic_id or (owner is None and clinic_id == DEFAULT_CLINIC)]


def _summary(letter: dead_letters.DeadLetter) -> str:
    """``actor(args)`` with every key shown as the clinic's own id."""
    shown = [external_id(a) if isinstance(a, str) else a for a in letter.args]
    return f"{letter.actor}({', '.join(json.dumps(a) for a in shown)})"


@click.group()
def dlq() -> None:
    """Dead letters: messages that failed for good."""


@dlq.command("list")
@clinic_option
def dlq_list(clinic_id: str) -> None:
    """A clinic's dead letters, newest first, each with its reason."""
    letters = _of_clinic(clinic_id, dead_letters.list_dead(_redis(), get_settings().redis_namespace,
                                                           _known_queues(), limit=100_000))
    if not letters:
        click.echo("no dead letters")
        return
    for letter in letters:
        click.echo(f"{letter.message_id}  {letter.failed_at:%Y-%m-%d %H:%M:%S}Z  {letter.queue:<13} "
                   f"{_summary(letter)}  retries={letter.retries}")
        click.echo(f"    reason: {letter.reason}")
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("show")
@click.argument("message_id")
@clinic_option
def dlq_show(message_id: str, clinic_id: str) -> None:
    """One dead letter of the clinic in full: actor, arguments, retries and the traceback."""
    letter = dead_letters.get_dead(_redis(), get_settings().redis_namespace, message_id, _known_queues())
    letter = next(iter(_of_clinic(clinic_id, [letter] if letter else [])), None)
    if letter is None:
        click.echo(f"no dead letter with id {message_id}", err=True)
        sys.exit(1)
    click.echo(f"id:        {letter.message_id}\nqueue:     {letter.queue}\nactor:     {letter.actor}\n"
               f"arguments: {_summary(letter)}\nretries:   {letter.retries}\n"
               f"failed at: {letter.failed_at:%Y-%m-%d %H:%M:%S}Z\nreason:    {letter.reason}")
    if letter.traceback:
        click.echo("traceback:\n" + letter.traceback.rstrip())


@dlq.command("retry")
@click.argument("message_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter of the clinic.")
@clinic_option
def dlq_retry(message_id: str | None, retry_all: bool, clinic_id: str) -> None:
    """Send a dead letter of the clinic (or all of them) to its queue again, with fresh retries."""
    if bool(message_id) == retry_all:
        click.echo("error: give a message id or --all (not both)", err=True)
        sys.exit(2)
    _setup_logging()
    client, namespace = _redis(), get_settings().redis_namespace
    if retry_all:
        letters = _of_clinic(clinic_id, dead_letters.list_dead(client, namespace, _known_queues(), limit=100_000))
    else:
        found = dead_letters.get_dead(client, namespace, message_id or "", _known_queues())
        found = next(iter(_of_clinic(clinic_id, [found] if found else [])), None)
        if found is None:
            click.echo(f"no dead letter with id {message_id}", err=True)
            sys.exit(1)
        letters = [found]
    for letter in letters:
        dead_letters.retry(client, namespace, letter, _resend)
        click.echo(f"retried {letter.message_id} {_summary(letter)}")
    click.echo(f"{len(letters)} dead letter(s) sent again")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@clinic_option
def dlq_purge(yes: bool, clinic_id: str) -> None:
    """Delete every dead letter of the clinic (the store keeps the truth; the reconciler
    still sees unfinished work)."""
    client, namespace = _redis(), get_settings().redis_namespace
    letters = _of_clinic(clinic_id, dead_letters.list_dead(client, namespace, _known_queues(), limit=10_000_000))
    if not yes and not click.confirm(f"delete {len(letters)} dead letter(s) of clinic {clinic_id}?"):
        sys.exit(1)
    for letter in letters:
        dead_letters.remove(client, namespace, letter)
    click.echo(f"purged {len(letters)} dead letter(s)")
