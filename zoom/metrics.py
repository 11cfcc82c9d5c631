"""What the Zoom adapter counts: calls, rate limits, token grants.

Labels never carry patient data or secrets; every process exports what it declares
(web at ``/metrics``, workers on TELEMED_WORKER_METRICS_PORT).
"""

from __future__ import annotations

from prometheus_client import Counter

ZOOM_CALLS = Counter("telemed_zoom_calls_total", "Calls to Zoom", ["operation", "status"])

ZOOM_RATE_LIMITED = Counter("telemed_zoom_rate_limited_total", "429 answers from Zoom", ["kind"])  # second|daily

TOKEN_REFRESHES = Counter("telemed_zoom_token_refreshes_total", "OAuth token grants", ["kind", "outcome"])
