"""What the HTTP entry points count: events accepted, rejected and repeated.

Labels never carry patient data or secrets; every process exports what it declares
(web at ``/metrics``, workers on TELEMED_WORKER_METRICS_PORT).
"""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_ACCEPTED = Counter("telemed_events_accepted_total", "Events accepted into the inbox", ["source"])

EVENTS_REJECTED = Counter("telemed_events_rejected_total", "Events rejected", ["source", "reason"])

EVENTS_DUPLICATE = Counter("telemed_events_duplicate_total", "Repeated events (same event_id)", ["source"])
