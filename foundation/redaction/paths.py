"""Secret-bearing paths and queries: judged by their structure, in any percent-encoding."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, unquote, unquote_plus

from telemed.foundation.redaction.keys import REDACTED

# Query parameters that are never credentials; a query holding anything else is masked
# whole (default deny: Zoom join links carry pwd= and uname=, OAuth callbacks code=).
_SAFE_QUERY_KEYS: Final = frozenset(
    {
        "page_size", "page_number", "page", "type", "status", "occurrence_id",
        "occurrence_ids", "show_previous_occurrences", "schedule_for_reminder",
        "cancel_meeting_reminder", "action", "limit", "offset", "sort", "order", "format",
        "lang", "v", "timeout", "db", "from", "to", "mc_page_size",
    }
)

# Path segments after which the rest of a path is a credential: a doctor's signed start
# link (/start/<token>), a patient's signed join link (/join/<token>). Recognised by the path's structure, not the token's shape, and in
# any percent-encoding: "/%73tart%2F%2565yJ..." reaches the same route as "/start/eyJ..."
# once decoded (twice, for a proxy that decodes too), and an access log prints it raw.
SECRET_PATH_SEGMENTS: Final = ("start", "join")


def any_encoding(text: str) -> str:
    """*text* as a pattern where each character may also be percent-encoded, any number
    of times over ("e", "%65", "%2565", ...). Use under (?i): hex digits in either case."""
    return "".join(f"(?:{re.escape(c)}|%(?:25)*{ord(c):02x})" for c in text)



def fully_unquoted(text: str) -> str:
    """Percent-decoded until nothing changes (a proxy may have encoded it twice)."""
    for _ in range(8):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def query_is_safe(query: str) -> bool:
    for pair in query.split("&"):
        if not pair:
            continue
        # Decoded first: "%74oken=" is "token=" to the application, and "token%3D<secret>"
        # is a key holding the secret.
        key = fully_unquoted(unquote_plus(pair.split("=", 1)[0])).strip().lower()
        if key not in _SAFE_QUERY_KEYS:
            return False
    return True


def mask_request_target(target: str) -> str:
    """An HTTP request target as a server logs it (raw path and query) with its credential
    parts masked by the path's structure, whatever the encoding.

    The path is percent-decoded until nothing changes (so "/%2573tart%252F..." counts as
    "/start/...") and everything after a segment named in SECRET_PATH_SEGMENTS, in any
    case, is masked. A query with any parameter not known to be harmless (``token=``,
    ``code=``, a bare value) is masked whole. Then scrub_text runs over the line as usual.
    """
    path, has_query, query = target.partition("?")
    segments = fully_unquoted(path).split("/")
    for index, segment in enumerate(segments[:-1]):
        if segment.lower() in SECRET_PATH_SEGMENTS and any(segments[index + 1 :]):
            path = quote("/".join(segments[:index]), safe="/") + "/" + segment.lower() + "/" + REDACTED
            break
    if has_query:
        path += "?" + (query if query and query_is_safe(query) else REDACTED)
    return path
