"""What the pipeline counts: meetings, notices, alerts, messages and their timing.

Labels never carry patient data or secrets; every process exports what it declares
(web at ``/metrics``, workers on TELEMED_WORKER_METRICS_PORT).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MEETINGS = Counter("telemed_meetings_total", "Zoom meetings changed", ["action"])  # created|updated|deleted|adopted

POLICY_MISMATCHES = Counter("telemed_meeting_policy_mismatch_total", "Meetings whose settings differ from policy",
                            ["setting"])

NOTIFICATIONS = Counter("telemed_notifications_total", "Notifications", ["channel", "role", "kind", "outcome"])

# ``clinic``: foundation.clinic_label (the clinic's id for the first 20 a process meets, then
# "other"), so the series stay bounded however many clinics there are.
ALERTS = Counter("telemed_alerts_total", "Admin alerts raised", ["kind", "clinic"])

END_TO_END = Histogram(
    "telemed_event_to_notification_seconds", "From event received to its notification sent",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)

# Worker processes (workers/queue/metrics_middleware.py), exported on TELEMED_WORKER_METRICS_PORT.
MESSAGES = Counter("telemed_worker_messages_total", "Messages handled, per actor and outcome",
                   ["actor", "outcome"])  # succeeded | failed | skipped | dead_lettered

DEFERRALS = Counter("telemed_worker_deferrals_total",
                    "Messages queued again for later instead of holding a thread on a busy Zoom pacer", ["actor"])

MESSAGE_SECONDS = Histogram(
    "telemed_worker_message_seconds", "Time spent handling one message", ["actor"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
