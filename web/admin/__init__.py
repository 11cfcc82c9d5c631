"""The admin page: appointments, doctors' Zoom connections, recent failures, dead letters."""

from telemed.web.admin.routes import router

__all__ = ["router"]
