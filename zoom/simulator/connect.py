"""A doctor's Zoom connection made without a browser, for tests and ``telemed bench``:
consent at the simulator, the code exchanged with PKCE, the pair stored as the OAuth
callback (``web/oauth.py``) would store it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import requests

from telemed.foundation.tenancy import clinic_of
from telemed.store import appointments, zoom_tokens
from telemed.store.db import Database
from telemed.zoom.simulator import ZoomSimulator

REDIRECT = "http://127.0.0.1:9/oauth/zoom/callback"


def authorize(sim: ZoomSimulator, user: str, app: tuple[str, str] | None = None) -> dict[str, object]:
    """The token endpoint's answer for a fresh authorization by ``user`` through ``app``
    (client id, secret: a clinic's OAuth app; by default the simulator's first)."""
    client_id, client_secret = app or (sim.oauth_client_id, sim.oauth_client_secret)
    sim.authorize_as(user)
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    answer = requests.get(f"{sim.oauth_url}/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "state": "simulated", "code_challenge": challenge, "code_challenge_method": "S256",
    }, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    granted = requests.post(f"{sim.oauth_url}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
    }, auth=(client_id, client_secret), timeout=5)
    if granted.status_code != 200:
        raise RuntimeError(f"the simulator refused the code exchange: {granted.status_code} {granted.text[:200]}")
    body: dict[str, object] = granted.json()
    return body


def connect_doctor(database: Database, sim: ZoomSimulator, doctor_id: str, email: str,
                   name: str = "Dr. Simulated", app: tuple[str, str] | None = None) -> int:
    """Register the doctor if needed and store a fresh grant for them (through ``app``, their
    clinic's OAuth app); the token version."""
    body = authorize(sim, email, app)
    with database.session() as session:
        if appointments.get_doctor(session, doctor_id) is None:
            appointments.upsert_doctor(session, id=doctor_id, name=name, email=email, zoom_user=email,
                                       clinic_id=clinic_of(doctor_id))
        grant = zoom_tokens.NewGrant(str(body["access_token"]), str(body["refresh_token"]),
                                     float(str(body["expires_in"])), str(body["scope"]))
        return zoom_tokens.connect(session, doctor_id, grant)
