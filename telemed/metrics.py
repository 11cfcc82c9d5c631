"""Prometheus metrics, declared once so every part counts under the same names.

Web and worker processes export them (web at ``/metrics``; workers on
TELEMED_WORKER_METRICS_PORT, bound to TELEMED_METRICS_BIND, loopback by default).
Labels never carry patient data or secrets.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter("telemed_events_accepted_total", "Events accepted into the inbox", ["source"])
EVENTS_REJECTED = Counter("telemed_events_rejected_total", "Events rejected", ["source", "reason"])
EVENTS_DUPLICATE = Counter("telemed_events_duplicate_total", "Repeated events (same event_id)", ["source"])
MEETINGS = Counter("telemed_meetings_total", "Zoom meetings changed", ["action"])  # created|updated|deleted|adopted
ZOOM_CALLS = Counter("telemed_zoom_calls_total", "Calls to Zoom", ["operation", "status"])
ZOOM_RATE_LIMITED = Counter("telemed_zoom_rate_limited_total", "429 answers from Zoom", ["kind"])  # second|daily
TOKEN_REFRESHES = Counter("telemed_zoom_token_refreshes_total", "OAuth token grants", ["kind", "outcome"])
POLICY_MISMATCHES = Counter("telemed_meeting_policy_mismatch_total", "Meetings whose settings differ from policy",
                            ["setting"])
NOTIFICATIONS = Counter("telemed_notifications_total", "Notifications", ["channel", "role", "kind", "outcome"])
OUTBOX_PENDING = Gauge("telemed_outbox_pending", "Outbox rows waiting to be sent")
QUEUE_DEPTH = Gauge("telemed_queue_depth", "Messages waiting per queue", ["queue"])
DEAD_LETTERS = Gauge("telemed_dead_letters", "Messages in the dead-letter sets", ["queue"])
ALERTS = Counter("telemed_alerts_total", "Admin alerts raised", ["kind"])
END_TO_END = Histogram(
    "telemed_event_to_notification_seconds", "From event received to its notification sent",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
# Worker processes (workers/metrics_middleware.py), exported on TELEMED_WORKER_METRICS_PORT.
MESSAGES = Counter("telemed_worker_messages_total", "Messages handled, per actor and outcome",
                   ["actor", "outcome"])  # succeeded | failed | skipped | dead_lettered
MESSAGE_SECONDS = Histogram(
    "telemed_worker_message_seconds", "Time spent handling one message", ["actor"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
# When the scheduler last measured the gauges above (unix seconds; 0: never).
GAUGES_UPDATED = Gauge("telemed_gauges_updated_timestamp_seconds", "When queue and outbox gauges were measured")
