"""The admin page: appointments, doctors' Zoom connections, recent failures, dead letters."""

from web.admin.routes import router

__all__ = ["router"]
