"""A local Zoom API simulator for tests, the demo and ``telemed zoom-sim``."""

from telemed.zoom.simulator.server import ZoomSimulator

__all__ = ["ZoomSimulator"]
