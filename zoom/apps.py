"""A clinic's Zoom apps as the adapter uses them: complete enough to ask for a token, and
a fingerprint of their credentials.

Each clinic brings its own server-to-server app (meetings under its own Zoom account) and
its own user-managed OAuth app (its doctors connect their own Zoom through it); a clinic
without one has none, never another clinic's or the deployment's.
"""

from __future__ import annotations

import hashlib

from telemed.foundation.tenancy import ClinicProfile, ZoomApp


def account_app(profile: ClinicProfile) -> ZoomApp | None:
    """The clinic's server-to-server app, when it is complete enough to ask for a token."""
    app = profile.zoom_account
    if app is None or not (app.client_id and app.client_secret and app.account_id):
        return None
    return app


def oauth_app(profile: ClinicProfile) -> ZoomApp | None:
    """The clinic's user-managed OAuth app (its doctors connect their own Zoom through it)."""
    app = profile.zoom_oauth
    if app is None or not (app.client_id and app.client_secret):
        return None
    return app


def app_fingerprint(app: ZoomApp | None) -> str:
    """A short, non-reversible tag of an app's credentials: a client built for them is
    rebuilt when they change, and a parked clinic resumes (never shown with the secret)."""
    if app is None:
        return "none"
    material = "\x00".join((app.client_id, app.client_secret, app.account_id or ""))
    return hashlib.sha256(b"telemed-zoom-app\x00" + material.encode()).hexdigest()[:16]
