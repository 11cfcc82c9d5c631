"""``decide_send``: each inbox tells one story (a plain rule; the race itself is tested in
tests/integration/test_inbox_story.py)."""

from __future__ import annotations

from telemed.workers.policy.decisions import RecipientMail, Send, decide_send


def mail(outbox_id: int, version: int, kind: str, status: str = "pending", in_flight: bool = False) -> RecipientMail:
    return RecipientMail(outbox_id=outbox_id, version=version, kind=kind, status=status, in_flight=in_flight)


def test_the_first_mail_to_a_recipient_is_the_invitation() -> None:
    decision = decide_send(mail(1, 1, "invite"), [])
    assert (decision.action, decision.kind) == (Send.SEND, "invite")


def test_a_move_to_a_recipient_never_told_goes_out_as_the_invitation_with_the_newest_details() -> None:
    invite_v1 = mail(1, 1, "invite")  # still pending: queued, not yet picked up
    decision = decide_send(mail(3, 2, "updated"), [invite_v1])
    assert (decision.action, decision.kind) == (Send.SEND, "invite")


def test_a_reminder_to_a_recipient_never_told_is_the_invitation_too() -> None:
    decision = decide_send(mail(5, 1, "reminder-15m"), [mail(1, 1, "invite", "failed")])
    assert (decision.action, decision.kind) == (Send.SEND, "invite")


def test_an_older_notice_after_a_newer_one_was_sent_is_superseded() -> None:
    decision = decide_send(mail(1, 1, "invite"), [mail(3, 2, "updated", "sent")])
    assert decision.action is Send.SUPERSEDE and "v2 updated" in decision.reason and "was sent" in decision.reason


def test_an_older_notice_while_a_newer_one_is_being_sent_is_superseded() -> None:
    decision = decide_send(mail(1, 1, "invite"), [mail(3, 2, "updated", in_flight=True)])
    assert decision.action is Send.SUPERSEDE and "being sent" in decision.reason


def test_a_newer_notice_waits_while_an_older_one_is_being_sent() -> None:
    decision = decide_send(mail(3, 2, "updated"), [mail(1, 1, "invite", in_flight=True)])
    assert decision.action is Send.WAIT


def test_a_claim_of_a_dead_worker_blocks_nobody() -> None:
    # in_flight is False for a claim whose worker no longer holds the row's lock
    decision = decide_send(mail(3, 2, "updated"), [mail(1, 1, "invite", in_flight=False)])
    assert (decision.action, decision.kind) == (Send.SEND, "invite")


def test_a_move_after_the_invitation_was_sent_is_a_move() -> None:
    decision = decide_send(mail(3, 2, "updated"), [mail(1, 1, "invite", "sent")])
    assert (decision.action, decision.kind) == (Send.SEND, "updated")


def test_a_cancellation_reaches_only_who_was_invited() -> None:
    told = decide_send(mail(5, 3, "cancelled"), [mail(1, 1, "invite", "sent"), mail(3, 2, "updated", "superseded")])
    assert (told.action, told.kind) == (Send.SEND, "cancelled")
    never_told = decide_send(mail(5, 3, "cancelled"), [mail(1, 1, "invite", "superseded")])
    assert never_told.action is Send.SUPERSEDE and "never invited" in never_told.reason


def test_within_one_version_the_row_order_decides() -> None:
    # A meeting re-made in Zoom owes an "updated" of the same version after the invite.
    decision = decide_send(mail(1, 1, "invite"), [mail(2, 1, "updated", "sent")])
    assert decision.action is Send.SUPERSEDE
    later = decide_send(mail(2, 1, "updated"), [mail(1, 1, "invite", "sent")])
    assert (later.action, later.kind) == (Send.SEND, "updated")


def test_the_row_itself_is_not_its_own_rival() -> None:
    row = mail(1, 1, "invite", in_flight=True)
    assert decide_send(row, [row]).action is Send.SEND
