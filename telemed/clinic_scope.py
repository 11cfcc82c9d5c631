"""``--clinic ID`` for the data commands (status, doctors, dlq, webhook): one clinic's data.

A command scoped to a clinic takes the clinic's own ids (its booking system's), finds
them under their scoped keys (``foundation.tenancy.scoped``) and shows the clinic's own
ids again. Another clinic's appointment, doctor or dead letter is "not found", exactly
like one that does not exist. The default is the default clinic, so a single-clinic
deployment uses every command as before.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from telemed.foundation.tenancy import DEFAULT_CLINIC, SEPARATOR, InvalidClinicId, check_clinic_id, scoped

clinic_option = click.option(
    "--clinic", "clinic_id", default=DEFAULT_CLINIC, show_default=True, metavar="ID",
    help="The clinic whose data to show and act on (ids are that clinic's own).")


def require_clinic(database: Any, clinic_id: str) -> None:
    """Exit with one clear line unless ``clinic_id`` names a clinic that exists."""
    try:
        check_clinic_id(clinic_id)
    except InvalidClinicId as exc:
        raise click.BadParameter(str(exc), param_hint="--clinic") from None
    # lazy: telemed --help must not import the whole pipeline
    from telemed.store.clinic_lookup import is_known

    with database.session() as session:
        known = is_known(session, clinic_id)
    if not known:
        click.echo(f"error: no clinic {clinic_id}", err=True)
        sys.exit(2)


def key_in(clinic_id: str, external: str) -> str | None:
    """The scoped key of the clinic's own id, or None for an id no clinic's booking system
    could have sent ('/' is in no contract id): another clinic's key typed by hand."""
    if SEPARATOR in external:
        return None
    return scoped(clinic_id, external)
