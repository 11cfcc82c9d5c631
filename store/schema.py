"""Every table module, imported so SQLModel.metadata (and alembic) knows them all."""

import store.api_keys
import store.models
import store.notifications
import store.operations
import store.zoom_tokens  # noqa: F401  (doctor OAuth tokens: Zoom adapter issue)
