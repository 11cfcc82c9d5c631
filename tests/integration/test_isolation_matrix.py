"""The isolation matrix (issue 13): every HTTP route and every ``telemed`` command, for
every principal of clinic A and of clinic B, against a resource of A and of B.

HTTP: principal (A admin, A booking, A doctor: the doctor assigned to A's appointment,
B admin, B doctor: B's doctor of the same id, none) × resource of A and of B, over real
HTTP on one seeded deployment (tests/support/isolation_world.py). Routes that take a
credential of their own get those principals too: the event door A's and B's ingress keys
(and the default clinic's secret), the Zoom webhooks A's and B's (and the default's)
secret, the signed links the holder of a link minted for A's or B's doctor or patient,
the OAuth callback A's or B's doctor's browser. In every cell:

- only the resource's own clinic's principals see it; anyone else gets what a missing
  resource gets (404 and the same detail for the API, the admin's not-found page, "no
  longer exists" for a dead letter), or a refusal (401/403, the sign-in page) where the
  route does not take that principal;
- no answer holds another clinic's canary values (tests/support/isolation_world.py), and
  none holds any clinic's secrets;
- a start_url appears only where it is due (the resource's clinic's admins and assigned
  doctor, at the access API and through the doctor's own start link), and then it is the
  resource's meeting's.

CLI: each command in the scope of A and of B (``--clinic``, or the clinic it names) ×
resource of A and of B: it reaches the resource only in its own clinic's scope ("not found"
like a missing one otherwise), and prints no other clinic's canary.

The tables below must name every route of ``create_app`` and every command of
``telemed``: a route or command added without its matrix entry (or a reason it holds no
clinic data) fails ``test_the_matrix_covers_every_route`` / ``..._every_command``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
import httpx
import pytest
from fastapi import FastAPI

from telemed.cli import main
from telemed.web.app import create_app
from tests.support import isolation_commands as cli
from tests.support import isolation_routes as http
from tests.support.databases import fresh_database
from tests.support.isolation_routes import STANDARD, Principal, Transcript, credentials
from tests.support.isolation_world import METRICS_TOKEN, A, B, World, isolation_world

pytestmark = pytest.mark.integration
REAL_REDIS_URL = os.environ.get("TELEMED_TEST_REDIS_URL")
REAL_DATABASE_URL = os.environ.get("TELEMED_TEST_DATABASE_URL")


@dataclass(frozen=True)
class Route:
    exercise: http.Exerciser
    credentials: tuple[Principal, ...] = ()  # the route's own credentials, besides the standard principals


# Every route that holds or leads to a clinic's data: how a principal exercises it against a resource.
ROUTES: dict[str, Route] = {
    "GET /v1/appointments/{appointment_id}": Route(http.access_appointment),
    "GET /v1/appointments/{appointment_id}/meeting": Route(http.access_meeting),
    "POST /v1/events": Route(http.post_event, credentials("ingress key", default=True)),
    "POST /zoom/webhook": Route(http.default_zoom_webhook, credentials("zoom secret", default=True)),
    "POST /zoom/webhook/{clinic_id}": Route(http.clinic_zoom_webhook, credentials("zoom secret", default=True)),
    "GET /start/{token}": Route(http.start_link, credentials("doctor link")),
    "GET /join/{token}": Route(http.join_link, credentials("patient link")),
    "GET /oauth/zoom/connect": Route(http.oauth_connect, credentials("connect link")),
    "GET /oauth/zoom/callback": Route(http.oauth_callback, credentials("oauth browser")),
    "POST /admin/login": Route(http.admin_sign_in),
    "POST /admin/logout": Route(http.admin_sign_out),
    "GET /admin/appointments": Route(http.admin_list),
    "POST /admin/appointments/search": Route(http.admin_search),
    "GET /admin/appointments/{appointment_id:path}": Route(http.admin_detail),
    "GET /admin/doctors": Route(http.admin_doctors),
    "POST /admin/doctors/{doctor_id:path}/connect-link": Route(http.admin_connect_link),
    "GET /admin/problems": Route(http.admin_problems),
    "POST /admin/dead-letters/{message_id:path}/retry": Route(http.admin_retry),
}

# Routes that hold no clinic's data, and why (test_exempt_routes_show_no_clinics_data checks them too).
EXEMPT_ROUTES: dict[str, str] = {
    "GET /healthz": "the process answers: a constant",
    "GET /readyz": "the store, Redis, schema and clocks: ok or not, never a row",
    "GET /metrics": "operators' counters behind TELEMED_METRICS_TOKEN; a clinic appears only as a bounded label",
    "GET /openapi.json": "the API's description, the same for everyone",
    "GET /docs": "the API's description, the same for everyone",
    "GET /docs/oauth2-redirect": "the API description's page furniture",
    "GET /redoc": "the API's description, the same for everyone",
    "GET /admin": "a redirect: to the appointments when signed in, else to the sign-in form",
    "GET /admin/login": "the sign-in form, the same for everyone (signing in: POST /admin/login)",
}

# Every command that reads or changes a clinic's data: how it runs in a scope against a resource.
COMMANDS: dict[str, cli.Exerciser] = {
    "publish": cli.publish,
    "status": cli.status,
    "doctors list": cli.doctors_list,
    "doctors connect-link": cli.doctors_connect_link,
    "dlq list": cli.dlq_list,
    "dlq show": cli.dlq_show,
    "dlq retry": cli.dlq_retry,
    "dlq purge": cli.dlq_purge,
    "webhook status": cli.webhook_status,
    "webhook enable": cli.webhook_enable,
    "keys create": cli.keys_create,
    "keys list": cli.keys_list,
    "keys revoke": cli.keys_revoke,
    "clinics add": cli.clinics_add,
    "clinics update": cli.clinics_update,
    "clinics suspend": cli.clinics_suspend,
    "clinics resume": cli.clinics_resume,
    "clinics show": cli.clinics_show,
    "clinics refusals": cli.clinics_refusals,
    "clinics ingress-key add": cli.ingress_key_add,
    "clinics ingress-key retire": cli.ingress_key_retire,
    "clinics ingress-key list": cli.ingress_key_list,
    "clinics export": cli.clinics_export,
    "clinics delete": cli.clinics_delete,
}

EXEMPT_COMMANDS: dict[str, str] = {
    "demo": "runs a throwaway deployment of its own (its own directory, database and clinic)",
    "worker": "runs the pipeline's worker processes; prints no data",
    "scheduler": "runs the periodic jobs; prints no data",
    "web": "serves the HTTP app, whose every route is in the HTTP matrix",
    "run": "web, worker and scheduler together: see those",
    "check": "checks the services (Redis, database, migrations, clocks, Zoom, SMTP); no clinic's data",
    "db upgrade": "migrates the schema; no clinic's data",
    "zoom-sim": "runs the local Zoom simulator; no telemed data",
    "bench": "benchmarks on deployments of their own",
    "keys rotate": "re-encrypts every clinic's stored secrets under the newest key; prints counts per column",
    "clinics list": "the operator's registry of clinics (id, name, status, counts); no clinic's appointments, "
                    "doctors or patients",
}


def app_routes(app: FastAPI) -> set[str]:
    """Every (method, path) the app answers, HEAD aside, as ``"METHOD /path"``."""
    found: list[Any]
    try:  # newer FastAPI keeps included routers as routers: walk them
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older: app.routes is already flat
        found = list(app.routes)
    else:
        found = list(iter_route_contexts(app.routes))  # type: ignore[arg-type]
    return {f"{method} {route.path}" for route in found for method in (getattr(route, "methods", None) or ())
            if method != "HEAD"}


def cli_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    names = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= cli_commands(command, (*prefix, name))
        else:
            names.add(" ".join((*prefix, name)))
    return names


# The cells -----------------------------------------------------------------------------------

RESOURCES = (A, B)
LABEL = {A: "A", B: "B"}


@dataclass(frozen=True)
class HttpCell:
    route: str
    principal: Principal
    resource: str

    def __str__(self) -> str:
        return f"{self.route} | {self.principal} | resource of {LABEL[self.resource]}"


@dataclass(frozen=True)
class CliCell:
    command: str
    scope: str
    resource: str

    def __str__(self) -> str:
        return f"telemed {self.command} | scope {LABEL[self.scope]} | resource of {LABEL[self.resource]}"


STANDARD_CELLS = [HttpCell(route, who, resource) for route in ROUTES for who in STANDARD for resource in RESOURCES]
CREDENTIAL_CELLS = [HttpCell(route, who, resource) for route, entry in ROUTES.items()
                    for who in entry.credentials for resource in RESOURCES]
CLI_CELLS = [CliCell(command, scope, resource) for command in COMMANDS for scope in (A, B) for resource in RESOURCES]


def matrix_size() -> str:
    return (f"{len(ROUTES)} routes × {len(STANDARD)} principals × {len(RESOURCES)} resources = "
            f"{len(STANDARD_CELLS)} cells, plus {len(CREDENTIAL_CELLS)} cells of the routes' own credentials "
            f"({len(STANDARD_CELLS) + len(CREDENTIAL_CELLS)} HTTP cells); "
            f"{len(COMMANDS)} commands × 2 scopes × {len(RESOURCES)} resources = {len(CLI_CELLS)} CLI cells; "
            f"{len(EXEMPT_ROUTES)} routes and {len(EXEMPT_COMMANDS)} commands hold no clinic data")


# The deployment, once per module and backend -------------------------------------------------


def _backends() -> list[str]:
    return ["real", "embedded"] if (REAL_REDIS_URL and REAL_DATABASE_URL) else ["embedded"]


@pytest.fixture(scope="module", params=_backends())
def world(request: pytest.FixtureRequest, embedded_redis: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("isolation")
    real = request.param == "real"
    with fresh_database("postgresql" if real else "sqlite", tmp, REAL_DATABASE_URL) as database_url:
        redis_url = REAL_REDIS_URL if real else embedded_redis.url
        assert redis_url is not None
        with isolation_world(redis_url, database_url, tmp) as seeded:
            yield seeded


# What every cell must hold -------------------------------------------------------------------

_START = re.compile(r"zoom\.us/s/(\d+)")


def _assert_nothing_of_others(world: World, texts: str, own: str | None, where: str) -> None:
    """No canary of a clinic other than ``own`` (None: of any clinic), no secret of any."""
    for clinic in world.clinics.values():
        if clinic.id != own:
            leaked = sorted({c for c in clinic.canaries() if c and c in texts})
            assert not leaked, f"{where}: clinic {clinic.id}'s data reached another clinic's principal: {leaked}"
        secrets = [s for s in clinic.secrets() if s in texts]
        assert not secrets, f"{where}: a secret of clinic {clinic.id} in an answer"


def _assert_start_urls(texts: str, due: bool, meeting_id: int, where: str) -> None:
    shown = set(_START.findall(texts))
    if due:
        assert shown == {str(meeting_id)}, f"{where}: start_url of {shown}, not of meeting {meeting_id}"
    else:
        assert not shown and "zak=" not in texts, f"{where}: a start_url for a principal not due one"


@pytest.mark.parametrize("cell", STANDARD_CELLS + CREDENTIAL_CELLS, ids=str)
def test_route(world: World, cell: HttpCell) -> None:
    resource = world.clinics[cell.resource]
    transcript = Transcript()
    due = ROUTES[cell.route].exercise(world, cell.principal, resource, transcript)
    texts = transcript.text()
    assert transcript.texts, f"{cell}: no request made"
    _assert_nothing_of_others(world, texts, cell.principal.clinic, str(cell))
    _assert_start_urls(texts, due, resource.meeting_id, str(cell))


@pytest.mark.parametrize("cell", CLI_CELLS, ids=str)
def test_command(world: World, cell: CliCell) -> None:
    shown = COMMANDS[cell.command](world, world.clinics[cell.scope], world.clinics[cell.resource],
                                   cli.runner(world))
    texts = "\n".join(shown.outputs)
    _assert_nothing_of_others(world, texts, shown.scope, str(cell))
    _assert_start_urls(texts, False, 0, str(cell))


# Coverage of the tables, and the routes without clinic data -----------------------------------


def test_the_matrix_covers_every_route() -> None:
    served = app_routes(create_app(None))  # type: ignore[arg-type]  # routes only; nothing is served
    assert not set(ROUTES) & set(EXEMPT_ROUTES)
    assert served == set(ROUTES) | set(EXEMPT_ROUTES), (
        f"routes without a matrix entry: {sorted(served - set(ROUTES) - set(EXEMPT_ROUTES))}; "
        f"entries without a route: {sorted(set(ROUTES) | set(EXEMPT_ROUTES) - served)}")
    assert all(reason.strip() for reason in EXEMPT_ROUTES.values())


def test_the_matrix_covers_every_command() -> None:
    commands = cli_commands(main)
    assert not set(COMMANDS) & set(EXEMPT_COMMANDS)
    assert commands == set(COMMANDS) | set(EXEMPT_COMMANDS), (
        f"commands without a matrix entry: {sorted(commands - set(COMMANDS) - set(EXEMPT_COMMANDS))}; "
        f"entries without a command: {sorted(set(COMMANDS) | set(EXEMPT_COMMANDS) - commands)}")
    assert all(reason.strip() for reason in EXEMPT_COMMANDS.values())


def test_the_matrix_size(capsys: pytest.CaptureFixture[str]) -> None:
    size = matrix_size()
    with capsys.disabled():
        print(f"\nisolation matrix: {size}")
    assert len(STANDARD_CELLS) == len(ROUTES) * 6 * 2 and len(CLI_CELLS) == len(COMMANDS) * 4


def test_exempt_routes_show_no_clinics_data(world: World) -> None:
    """What the routes without clinic data answer holds no clinic's data, to anyone."""
    with httpx.Client(base_url=world.url, timeout=10) as web:
        answers = [web.get(path.split(" ", 1)[1]) for path in EXEMPT_ROUTES]
        answers.append(web.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}))
    assert answers[-1].status_code == 200 and "telemed_" in answers[-1].text
    texts = "\n".join(f"{a.headers.get('location', '')}\n{a.text}" for a in answers)
    _assert_nothing_of_others(world, texts, None, "exempt routes")
    _assert_start_urls(texts, False, 0, "exempt routes")
