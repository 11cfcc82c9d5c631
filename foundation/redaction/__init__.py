"""Log redaction: structlog processors that keep secrets and patient data out of every line.

Two layers, both applied to every event (docs/architecture.md, principle 5):

* **By key.** A key whose name looks sensitive (``password``, ``start_url``,
  ``patient_name``, ``accessToken``, ...) has its value replaced by ``[REDACTED]``,
  whatever the value looks like. Allow-listed keys (ids, counters, states) are exempt
  from this check, because "name"-like heuristics would otherwise eat ``logger_name``.
* **By content.** Every string that reaches the renderer -- the message itself,
  allow-listed strings, nested dicts and lists, exception text and formatted
  tracebacks -- goes through :func:`scrub_text`, which masks tokens, credentials and
  e-mail addresses wherever they appear. A secret logged under an innocent key, or
  interpolated into an exception message by a library, is still caught.

Objects that are not plain data are turned into strings here (and scrubbed), so no
renderer ever calls ``repr()`` on an object we did not see.

How the scanner stays fast and tight:

* cheap substring tests ("=", "://", "eyJ", "@" ...) pick which pre-compiled branches
  can match at all, so most strings cost well under a microsecond and a normal event a
  few microseconds; every branch is linear in the input (tested on hostile strings);
* one left-to-right pass; a masked span that ends in an auth scheme or a sensitive key
  ("...Bearer", "...password=") also takes the value that follows, so one pattern eating
  the start of another can never leave a bare secret behind (found by property tests).

Limits, by nature: a secret with no recognisable shape and no telling key -- a bare
passcode in prose, a name in free text -- cannot be told from a word. Keep such values
in keyword fields with telling names (``passcode=...``), which are redacted by key.
"""

from telemed.foundation.redaction.keys import ALLOWED_KEYS, REDACTED, is_sensitive_key
from telemed.foundation.redaction.paths import mask_request_target
from telemed.foundation.redaction.processor import redact_event_dict, redact_value
from telemed.foundation.redaction.scanner import scrub_text

__all__ = [
    "ALLOWED_KEYS",
    "REDACTED",
    "is_sensitive_key",
    "mask_request_target",
    "redact_event_dict",
    "redact_value",
    "scrub_text",
]
