"""Connecting a doctor's Zoom in tests without a browser (see ``zoom.simulator.connect``)."""

from __future__ import annotations

from telemed.zoom.simulator.connect import REDIRECT, authorize, connect_doctor

__all__ = ["REDIRECT", "authorize", "connect_doctor"]
