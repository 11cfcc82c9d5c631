"""Which keys hold secrets or patient data, judged by their names (the first layer)."""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise
from typing import Final

REDACTED: Final = "[REDACTED]"

# Keys whose scalar values are known to be safe (ids, counters, states). Numbers, bools
# and None under these keys pass untouched; strings are still scanned, because an id
# field is exactly where a careless caller might put a URL.
ALLOWED_KEYS: Final[frozenset[str]] = frozenset(
    {
        "event", "level", "timestamp", "logger", "logger_name", "event_id", "event_type",
        "appointment_id", "message_id", "actor", "queue", "meeting_id", "zoom_meeting_id",
        "doctor_id", "patient_id", "clinic_id", "outbox_id", "receipt_id", "intent_id", "version",
        "status", "state", "kind", "role", "attempt", "retries", "max_retries", "delay_ms",
        "duration_ms", "elapsed_ms", "count", "http_status", "status_code", "zoom_code",
        "method", "path", "outcome", "error_type", "host_kind", "reason", "exception_type",
        "worker", "pid", "thread", "process", "recipient_role", "channel", "template",
        "limit", "remaining", "retry_after_s", "queue_name", "actor_name",
    }
)

# --- Sensitive key names ---------------------------------------------------------------

# Whole words (after splitting snake/kebab/camel case) that make a key sensitive.
_SENSITIVE_WORDS: Final = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passcode", "passphrase", "secret", "secrets",
        "token", "tokens", "authorization", "auth", "zak", "tk", "otp", "jwt", "bearer",
        "cookie", "cookies", "credential", "credentials", "signature", "sig", "sessionid",
        "email", "emails", "phone", "mobile", "telephone", "address", "ssn", "dob",
        "birthdate", "birthday",
    }
)
# Substrings of the compacted key ("accessToken" -> "accesstoken"): catches glued forms.
_SENSITIVE_STEMS: Final = (
    "password", "passcode", "passwd", "secret", "token", "apikey", "authorization",
    "cookie", "credential", "starturl", "joinurl", "privatekey", "email",
)
# Adjacent word pairs that are sensitive together though each word alone is not.
_SENSITIVE_PAIRS: Final = frozenset(
    {
        "api_key", "access_key", "secret_key", "private_key", "signing_key", "session_key",
        "encryption_key", "fernet_key", "master_key", "client_key", "host_key",
        "start_url", "join_url", "start_link", "join_link", "signed_url", "signed_link",
        "host_url", "registration_url", "magic_link",
    }
)
# A person's name is patient data; "name" keys are redacted unless known to be technical.
_NAME_WORDS: Final = frozenset(
    {"name", "names", "username", "fullname", "firstname", "lastname", "surname",
     "displayname", "nickname"}
)
_SAFE_KEYS: Final = frozenset(
    {
        "logger_name", "actor_name", "queue_name", "func_name", "function_name",
        "thread_name", "process_name", "module_name", "event_name", "task_name",
        "type_name", "class_name", "table_name", "column_name", "file_name", "field_name",
        "param_name", "header_name", "template_name", "env_name", "app_name",
        "service_name", "metric_name", "middleware_name", "broker_name", "exc_name",
        "error_name", "job_name", "cookie_name", "token_url", "token_endpoint",
    }
)
# Keys that describe a secret without holding it ("token_expires_at", "passcode_length").
_META_LAST_WORDS: Final = frozenset(
    {"count", "ttl", "age", "len", "length", "kind", "type", "version", "expiry",
     "expires", "present", "configured", "rotated", "source", "scheme"}
)
_TIME_PREFIX_WORDS: Final = frozenset(
    {"expires", "expiry", "expired", "issued", "created", "rotated", "refreshed", "updated"}
)

_KEY_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when a key's *name* says its value is a secret or personal data.

    Cached: the same few hundred key names recur in every log line.
    """
    words = tuple(w.lower() for w in _KEY_SPLIT.split(key) if w)
    if not words:
        return False
    joined = "_".join(words)
    if joined in _SAFE_KEYS:
        return False
    if words[-1] in _META_LAST_WORDS or (
        len(words) >= 2 and words[-2] in _TIME_PREFIX_WORDS and words[-1] in {"at", "in", "on"}
    ):
        return False
    if any(w in _SENSITIVE_WORDS or w in _NAME_WORDS for w in words):
        return True
    if any(f"{a}_{b}" in _SENSITIVE_PAIRS for a, b in pairwise(words)):
        return True
    compact = "".join(words)
    return any(stem in compact for stem in _SENSITIVE_STEMS)


# Keys whose bare (unquoted) value after "key: " is masked. Deliberately narrower than
# is_sensitive_key: "Failed to refresh token: invalid_grant" must keep "invalid_grant".
_COLON_STRONG_WORDS: Final = frozenset({"pwd", "zak", "secret"})
# Matched inside the compacted key, so "smtpPassword:" and "0password:" count too.
_COLON_STRONG_STEMS: Final = (
    "password", "passwd", "passcode", "passphrase", "clientsecret", "accesstoken",
    "refreshtoken", "idtoken", "apikey",
)


@lru_cache(maxsize=1024)
def is_strong_colon_key(key: str) -> bool:
    words = [w.lower() for w in _KEY_SPLIT.split(key) if w]
    compact = "".join(words)
    return any(w in _COLON_STRONG_WORDS for w in words) or any(
        stem in compact for stem in _COLON_STRONG_STEMS
    )

