"""The signed outbound webhook to the booking system (``TELEMED_WEBHOOK_URL``).

Signed like the ingress (``events.signing``), so a booking system verifies both directions
with the same code:

    X-Telemed-Timestamp: <unix seconds>
    X-Telemed-Signature: v1=<hex HMAC-SHA256(TELEMED_WEBHOOK_SECRET, "v1:" + ts + ":" + body)>

The body carries the appointment's status and, while the meeting is live, the patient's
join link; never a host link (the payload builder refuses one). Answers are classified
for the outbox retry policy: 2xx delivered; 410 Gone means the receiver retired the
endpoint (:class:`WebhookGone`: disable it and alert); 408/425/429/5xx and network
failures are transient; any other answer (including a redirect, never followed: it could
carry the signed body elsewhere) is permanent. Error texts name the status only, never
the URL (it may hold a token) or the receiver's answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests

from telemed.events import signing
from telemed.foundation import tls
from telemed.foundation.urls import require_secure_url
from telemed.workers.notifier.errors import PermanentDeliveryError, TransientDeliveryError
from telemed.workers.notifier.messages import looks_like_host_link

USER_AGENT = "telemed-webhook/1"
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class WebhookGone(PermanentDeliveryError):
    """The receiver answered 410 Gone: stop sending to this URL."""


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if looks_like_host_link(body.decode()):
        raise PermanentDeliveryError("webhook payload would carry a host link")
    return body


class WebhookChannel:
    def __init__(self, url: str, secret: str, timeout: float, session: requests.Session | None = None) -> None:
        self.url = require_secure_url(url, what="TELEMED_WEBHOOK_URL")
        if not secret:
            raise ValueError("TELEMED_WEBHOOK_SECRET: required when TELEMED_WEBHOOK_URL is set")
        self._secret = secret.encode()
        self._timeout = (float(timeout), float(timeout))
        self._session = tls.secure_session(session)

    def __repr__(self) -> str:
        return "<WebhookChannel>"

    def send(self, payload: Mapping[str, Any], delivery_id: str, *, now: float | None = None) -> int:
        """POST one signed payload; the status code on success, else a DeliveryError."""
        body = encode_payload(payload)
        # Signed afresh for every attempt (the ingress side refuses a repeated signature).
        signed = signing.sign(self._secret, body, now=now)
        headers = {
            **signed.headers,
            "User-Agent": USER_AGENT,
            # Stable across retries, so the receiver can drop a repeat.
            "X-Telemed-Delivery": delivery_id,
        }
        try:
            response = self._session.post(self.url, data=body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except requests.exceptions.SSLError:
            raise PermanentDeliveryError("webhook TLS failure (certificate or protocol)") from None
        except requests.exceptions.Timeout:
            raise TransientDeliveryError("webhook timeout") from None
        except requests.exceptions.RequestException as exc:
            raise TransientDeliveryError(f"webhook connection failed ({type(exc).__name__})") from None
        status = response.status_code
        response.close()
        return classify_status(status)


def classify_status(status: int) -> int:
    if 200 <= status < 300:
        return status
    if status == 410:
        raise WebhookGone("webhook answered 410 Gone")
    if status >= 500 or status in TRANSIENT_STATUSES:
        raise TransientDeliveryError(f"webhook answered {status}")
    if 300 <= status < 400:
        raise PermanentDeliveryError(f"webhook answered a redirect ({status}); configure the final URL")
    raise PermanentDeliveryError(f"webhook answered {status}")
