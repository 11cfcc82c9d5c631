"""Every table module, imported so SQLModel.metadata (and alembic) knows them all."""

import store.api_keys  # noqa: F401
import store.models  # noqa: F401
import store.notifications  # noqa: F401  (start-link audits, reminders: notifications issue)
import store.operations  # noqa: F401  (webhook receipts, alerts: ingress/operations issue)
import store.zoom_tokens  # noqa: F401  (doctor OAuth tokens: Zoom adapter issue)
