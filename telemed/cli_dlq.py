"""``telemed dlq list | show ID | retry ID|--all | purge``: messages that failed for good."""

from __future__ import annotations

import sys

import click

from telemed.foundation import dead_letters
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


@click.group()
def dlq() -> None:
    """Dead letters: messages that failed for good."""


@dlq.command("list")
def dlq_list() -> None:
    """Dead letters, newest first, each with its reason."""
    letters = dead_letters.list_dead(_redis(), get_settings().redis_namespace, _known_queues())
    if not letters:
        click.echo("no dead letters")
        return
    for letter in letters:
        click.echo(f"{letter.message_id}  {letter.failed_at:%Y-%m-%d %H:%M:%S}Z  {letter.queue:<13} "
                   f"{letter.summary()}  retries={letter.retries}")
        click.echo(f"    reason: {letter.reason}")
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("show")
@click.argument("message_id")
def dlq_show(message_id: str) -> None:
    """One dead letter in full: actor, arguments, retries and the traceback."""
    letter = dead_letters.get_dead(_redis(), get_settings().redis_namespace, message_id, _known_queues())
    if letter is None:
        click.echo(f"no dead letter with id {message_id}", err=True)
        sys.exit(1)
    click.echo(f"id:        {letter.message_id}\nqueue:     {letter.queue}\nactor:     {letter.actor}\n"
               f"arguments: {letter.summary()}\nretries:   {letter.retries}\n"
               f"failed at: {letter.failed_at:%Y-%m-%d %H:%M:%S}Z\nreason:    {letter.reason}")
    if letter.traceback:
        click.echo("traceback:\n" + letter.traceback.rstrip())


@dlq.command("retry")
@click.argument("message_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
def dlq_retry(message_id: str | None, retry_all: bool) -> None:
    """Send a dead letter (or all of them) to its queue again, with fresh retries."""
    if bool(message_id) == retry_all:
        click.echo("error: give a message id or --all (not both)", err=True)
        sys.exit(2)
    _setup_logging()
    client, namespace = _redis(), get_settings().redis_namespace
    if retry_all:
        letters = dead_letters.list_dead(client, namespace, _known_queues(), limit=100_000)
    else:
        found = dead_letters.get_dead(client, namespace, message_id or "", _known_queues())
        if found is None:
            click.echo(f"no dead letter with id {message_id}", err=True)
            sys.exit(1)
        letters = [found]
    for letter in letters:
        dead_letters.retry(client, namespace, letter, _resend)
        click.echo(f"retried {letter.message_id} {letter.summary()}")
    click.echo(f"{len(letters)} dead letter(s) sent again")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_purge(yes: bool) -> None:
    """Delete every dead letter (the store keeps the truth; the reconciler still sees unfinished work)."""
    if not yes and not click.confirm("delete every dead letter?"):
        sys.exit(1)
    removed = dead_letters.purge(_redis(), get_settings().redis_namespace, _known_queues())
    click.echo(f"purged {removed} dead letter(s)")
