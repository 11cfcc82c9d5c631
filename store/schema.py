"""Every table module, imported so SQLModel.metadata (and alembic) knows them all."""

import telemed.store.api_keys
import telemed.store.clinic_tables
import telemed.store.models
import telemed.store.notifications
import telemed.store.oauth_states
import telemed.store.operations
import telemed.store.zoom_tokens  # noqa: F401  (doctor OAuth tokens: Zoom adapter issue)
