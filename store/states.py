"""The names of states, in one place."""

from typing import Final

# Appointment.desired
SCHEDULED: Final = "scheduled"
CANCELLED: Final = "cancelled"

# Appointment.state: where the meeting stands against the desired state.
PENDING: Final = "pending"  # Zoom does not reflect the newest version yet
PROVISIONED: Final = "provisioned"  # meeting exists and matches
CLOSED: Final = "cancelled"  # cancelled and the meeting is gone
NEEDS_ATTENTION: Final = "needs_attention"  # a person must act; see attention_reason
IN_PROGRESS: Final = "in_progress"  # Zoom says the meeting has started (webhook)
COMPLETED: Final = "completed"  # Zoom says the meeting has ended (webhook)

# Doctor.connection
NEEDS_RECONNECT: Final = "needs_reconnect"  # the doctor removed our app in Zoom

# InboxEvent.status
EVENT_PENDING: Final = "pending"
EVENT_APPLIED: Final = "applied"
EVENT_STALE: Final = "stale"

# OutboxMessage.status
OUTBOX_PENDING: Final = "pending"
OUTBOX_SENT: Final = "sent"
OUTBOX_FAILED: Final = "failed"
OUTBOX_SUPERSEDED: Final = "superseded"  # never to be sent: something newer replaced it

# ProvisioningIntent.status
INTENT_OPEN: Final = "open"
INTENT_DONE: Final = "done"
INTENT_ABANDONED: Final = "abandoned"

# Meeting.registration: how the patient joins
REGISTRATION_OFF: Final = "off"  # the meeting's passcode link (TELEMED_PATIENT_JOIN=link)
REGISTRATION_OPEN: Final = "open"  # registration on; the patient is not registered yet
REGISTRATION_REGISTERED: Final = "registered"  # the patient's own link
REGISTRATION_FALLBACK: Final = "fallback"  # the host cannot use registration: passcode link
