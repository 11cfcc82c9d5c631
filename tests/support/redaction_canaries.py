"""Canary secrets: made-up values with a distinctive core ("CANARY...", "Cn4ryPass1").

A test fails if any core survives wherever a canary was put; the redaction tests and the
logging tests both drive them through (tests/unit/test_redaction.py, test_logging.py).
"""

from __future__ import annotations

import base64

ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.CANARYpayload.CANARYsig"
ZAK = "CANARY_ZAK"
START_URL = f"https://zoom.us/s/123456789?zak={ZAK}"
JOIN_URL = "https://zoom.us/j/987654321?pwd=CANARYPWD"
PASSCODE = "Cn4ryPass1"
PATIENT_EMAIL = "canary.patient@example.org"
REFRESH_TOKEN = "CANARYrefresh0123456789abcdef"
FERNET_TOKEN = "gAAAAABnCANARYfernet0123456789abcdefABCDEF_-xyzQ=="
SMTP_URL = "smtps://mailer:Sm7pCanaryPw@smtp.example.org:465"
BEARER_TOKEN = "CANARYbearer0123456789"
BASIC_CRED = base64.b64encode(b"client-id:CANARYbasicSecret").decode()
CLIENT_SECRET = "CANARYclientSecret42"
OAUTH_CODE = "CANARYoauthCode77"
PATIENT_NAME = "Canarina Patientova"
PHONE = "+49-30-5550199-CANARYphone"

# Substrings that must never appear in scrubbed output.
SECRET_FRAGMENTS: tuple[str, ...] = (
    "CANARYpayload", "CANARYsig", ZAK, "CANARYPWD", PASSCODE, "canary.patient",
    "CANARYrefresh", "CANARYfernet", "Sm7pCanaryPw", "CANARYbearer", BASIC_CRED,
    "CANARYclientSecret", "CANARYoauthCode", "Canarina", "CANARYphone", "CANARYredis",
    "CANARYkey", "CANARYsession", "CANARYstartlink", "CANARYconnect",
)


def assert_no_canary(text: str) -> None:
    leaked = [f for f in SECRET_FRAGMENTS if f in text]
    assert not leaked, f"canary fragments {leaked} leaked in: {text!r}"
