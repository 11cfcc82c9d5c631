"""``telemed clinics …``: the clinics one deployment serves.

The group gathers the clinic commands that live beside their parts: ``export`` and
``delete`` (a clinic's data: ``telemed.cli_clinic_data``).
"""

from __future__ import annotations

import click

from telemed.cli_clinic_data import delete, export


@click.group()
def clinics() -> None:
    """Clinics: export a clinic's data, delete a clinic."""


for _command in (export, delete):
    clinics.add_command(_command)
