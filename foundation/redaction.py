"""Log redaction: structlog processors that keep secrets and patient data out of every line.

Two layers, both applied to every event (DESIGN principle 5):

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

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, MutableMapping
from enum import Enum
from functools import lru_cache
from itertools import pairwise
from typing import Any, Final
from urllib.parse import quote, unquote, unquote_plus

from structlog.processors import format_exc_info

__all__ = [
    "ALLOWED_KEYS",
    "REDACTED",
    "is_sensitive_key",
    "mask_request_target",
    "redact_event_dict",
    "redact_value",
    "scrub_text",
]

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
def _is_strong_colon_key(key: str) -> bool:
    words = [w.lower() for w in _KEY_SPLIT.split(key) if w]
    compact = "".join(words)
    return any(w in _COLON_STRONG_WORDS for w in words) or any(
        stem in compact for stem in _COLON_STRONG_STEMS
    )


# --- Content scanner -------------------------------------------------------------------

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

_URL_VALUE = r"[A-Za-z][A-Za-z0-9+.\-]*+://[^\s\"'<>\\^`{|}]+"
# A value after "key=" / "key:": escaped-quoted, quoted, a URL, or a bare token.
_VALUE = (
    r"(?:\\\"(?:(?!\\\").)*\\\""
    r"|\"(?:[^\"\\\n]|\\.)*\""
    r"|'(?:[^'\\\n]|\\.)*'"
    r"|" + _URL_VALUE +
    # An auth scheme and its credential are one value ("Authorization: Basic <b64>").
    r"|(?i:bearer|basic|token|digest|negotiate)[ \t]+[^\s&,;'\"<>)}\]]+"
    r"|\\?[\"']?[^\s&,;'\"<>)}\]]+)"  # bare, or after an unterminated quote
)

_VALUE_RE: Final = re.compile(_VALUE)
# The tail of a masked span that gave the *next* value its meaning: an auth scheme, or
# a key (with or without its separator) -- "?x=basic <b64>", "?x=password: <secret>".
_DANGLING_SCHEME: Final = re.compile(r"(?i:bearer|basic|token|digest|negotiate)[ \t]*$")
_DANGLING_KEY: Final = re.compile(
    r"([A-Za-z0-9_.\-]+)[\"']?[ \t]*([=:]?)[ \t]*([\"']?)$"
)
# The rest of a quoted value whose opening quote was inside the masked span.
_REST_OF_QUOTED: Final = {q: re.compile(rf"[^{q}\n]*{q}?") for q in ('"', "'")}
# Between a dangling key/scheme and its value: a separator or at least a blank. Nothing
# at all means the next text is glued on and gets scanned in its own right.
_BLANKS: Final = re.compile(r"[ \t]*")
_SEPARATOR: Final = re.compile(r"[\"']?[ \t]*[=:][ \t]*")
_GAP: Final = re.compile(r"[\"']?[ \t]*[=:][ \t]*|[ \t]+")

# Path segments after which the rest of a path is a credential: a doctor's signed start
# link (/start/<token>). Recognised by the path's structure, not the token's shape, and in
# any percent-encoding: "/%73tart%2F%2565yJ..." reaches the same route as "/start/eyJ..."
# once decoded (twice, for a proxy that decodes too), and an access log prints it raw.
SECRET_PATH_SEGMENTS: Final = ("start",)


def _any_encoding(text: str) -> str:
    """*text* as a pattern where each character may also be percent-encoded, any number
    of times over ("e", "%65", "%2565", ...). Use under (?i): hex digits in either case."""
    return "".join(f"(?:{re.escape(c)}|%(?:25)*{ord(c):02x})" for c in text)


_SLASH: Final = _any_encoding("/")
_SECRET_PATH: Final = (
    "(?i:" + _SLASH
    + "(?P<sp_name>" + "|".join(_any_encoding(name) for name in SECRET_PATH_SEGMENTS) + ")"
    + _SLASH + r")[^\s\"'<>?#]+"
)
# "=" in any encoding: "?token%3D<secret>" still leaves a credential in the log line.
_EQUALS: Final = _any_encoding("=")

_BRANCHES: Final[dict[str, str]] = {
    # Anchored on "KEY-----" alone, so a branch that ate "-----BEGIN PRIVATE" leaves no
    # key body behind.
    "privkey": r"(?:-----BEGIN [A-Z ]*)?KEY-----[\s\S]*?(?:-----END [A-Z ]*KEY-----|\Z)",
    "url": r"(?<![A-Za-z0-9+.\-])" + _URL_VALUE,
    # No \b before the scheme words: "xBearer <token>" must not slip through.
    "bearer": r"(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{6,}",
    # The whole token-ish run: "Basic eyJ...", "Basic passcode=x" leave no tail behind.
    "basic": r"(?i:basic)\s+[A-Za-z0-9+/._~=\-]{6,}",
    # An HTTP header line: the whole value, so "Authorization: Token abc" loses "abc" too.
    "header": r"(?i:authorization|x-api-key|cookie)"
              r"[ \t]*:[ \t]*[^\r\n\"']+",
    # Token branches also swallow any dot-joined parts that follow, so a token glued
    # to another ("gAAAAA...eyJ...") cannot leave a tail behind.
    "jwt": r"eyJ[A-Za-z0-9_\-]{8,}(?:\.[A-Za-z0-9_\-=]*)*",
    "fernet": r"gAAAAA[A-Za-z0-9_\-=]{20,}(?:\.[A-Za-z0-9_\-=]*)*",
    # From the "@" on; the scan loop extends the match back over the local part (linear,
    # unlike a regex that starts at every character of a long run).
    "email": r"(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}[A-Za-z0-9_\-=]*",
    # A Zoom start path without scheme ("/s/123456789?zak=..."): the host's credential.
    "spath": r"/s/\d{5,}[^\s\"'<>]*",
    # Our own secret-bearing paths, whatever their encoding ("/start/<token>").
    "secretpath": _SECRET_PATH,
    # A relative URL's query ("/oauth/callback?code=...", "/oauth/zoom/connect?token=...").
    "rquery": r"\?[A-Za-z0-9_.~%+\-\[\]]+(?i:" + _EQUALS + r")[^\s\"'<>#]*",
    # key=value, "key": value, 'key': value, key: "value" -- judged by the key's name.
    # The closing quote is optional on its own: a branch before may have eaten the
    # opening one.
    # Only key and separator are matched: a harmless pair's value is scanned by the same
    # pass, and only a sensitive key's value is measured (by _VALUE_RE) and skipped.
    "kv": r"(?P<kv_q>\\?[\"'])?(?<![A-Za-z0-9_.\-])(?P<kv_key>[A-Za-z0-9_.\-]++)"
          r"(?P<kv_cq>\\?[\"'])?(?P<kv_sep>[ \t]*[=:][ \t]*)(?=\S)",
}


_ORDER: Final = tuple(_BRANCHES)
_TOKEN_KINDS: Final = frozenset({"jwt", "fernet", "email", "bearer", "basic"})
_TOKEN_RUN: Final = re.compile(r"[A-Za-z0-9_\-=+/~%]*(?:\.[A-Za-z0-9_\-=+/~%]+)*")
_EMAIL_LOCAL_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
)
_PATTERNS: dict[int, re.Pattern[str]] = {}


def _pattern_for(mask: int) -> re.Pattern[str]:
    pattern = _PATTERNS.get(mask)
    if pattern is None:
        # Compiled once per combination of triggered branches (a handful in practice);
        # the branch order, which decides ties at one position, is kept.
        names = [n for i, n in enumerate(_ORDER) if mask & (1 << i)]
        pattern = re.compile("|".join(f"(?P<{n}>{_BRANCHES[n]})" for n in names))
        _PATTERNS[mask] = pattern
    return pattern


_BIT: Final[dict[str, int]] = {name: 1 << i for i, name in enumerate(_ORDER)}
# Plain module constants: _scan runs for every string of every log line.
_B_PRIVKEY, _B_URL, _B_BEARER, _B_BASIC, _B_HEADER = (
    _BIT[n] for n in ("privkey", "url", "bearer", "basic", "header")
)
_B_JWT, _B_FERNET, _B_EMAIL, _B_SPATH, _B_SECRETPATH, _B_RQUERY, _B_KV = (
    _BIT[n] for n in ("jwt", "fernet", "email", "spath", "secretpath", "rquery", "kv")
)


def _scan(s: str, allow_url: bool = True) -> str:
    # Which branches can possibly match, judged by cheap substring tests (each a C-level
    # memchr-style search). Most log strings trigger none, and every branch skipped
    # saves the regex engine a try at every position -- the key=value branch above all.
    mask = 0
    if "=" in s:
        mask |= _B_KV
    if ":" in s:
        mask |= _B_KV
        if allow_url and "://" in s:
            mask |= _B_URL
        lowered = s.lower()
        if "authorization" in lowered or "cookie" in lowered or "api-key" in lowered:
            mask |= _B_HEADER
    if "@" in s or "%40" in s:
        mask |= _B_EMAIL
    if "?" in s:
        mask |= _B_RQUERY
    if "/s/" in s:
        mask |= _B_SPATH
    if "%" in s or ("/" in s and any(name in s.lower() for name in SECRET_PATH_SEGMENTS)):
        mask |= _B_SECRETPATH
    if "eyJ" in s:
        mask |= _B_JWT
    if "gAAAAA" in s:
        mask |= _B_FERNET
    if "earer" in s or "EARER" in s:  # Bearer, bearer, BEARER
        mask |= _B_BEARER
    if "asic" in s or "ASIC" in s:
        mask |= _B_BASIC
    if "KEY-----" in s:
        mask |= _B_PRIVKEY
    if not mask:
        return s
    pattern = _pattern_for(mask)
    # A hand-rolled re.sub: a replacement may resume scanning before the match's end
    # (a harmless key=, a harmless "?") or skip past it (a sensitive key's value).
    out: list[str] = []
    pos = 0
    while (m := pattern.search(s, pos)) is not None:
        start = m.start()
        if m.lastgroup == "email":
            # The match starts at "@": walk back over the local part, but not into text
            # already handled (which a lookbehind would wrongly treat as context).
            while start > pos and s[start - 1] in _EMAIL_LOCAL_CHARS:
                start -= 1
            if start == m.start():  # "@" with no local part: not an address
                out.append(s[pos : start + 1])
                pos = start + 1
                continue
        replacement, end = _replace(m)
        if m.lastgroup in _TOKEN_KINDS and REDACTED in replacement:
            # A masked token takes the rest of its run with it ("a@b.org_x=eyJ...").
            end = _TOKEN_RUN.match(s, end).end()  # type: ignore[union-attr]
        if REDACTED in replacement or m.lastgroup == "url":
            # Until a fixpoint: the swallowed value may itself end in "basic" ...
            span_start = start
            while (orphan := _orphaned_value(s, span_start, end)) is not None:
                replacement, span_start, end = replacement + " " + REDACTED, end, orphan
        out.append(s[pos:start])
        out.append(replacement)
        pos = end
    if not out:
        return s
    out.append(s[pos:])
    return "".join(out)


_URL_PARTS = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#(.*))?$", re.S)
_START_PATH = re.compile(r"(^|/)s/[^/?#]+")
_TRAILING_PUNCT = ".,;:!?)]}"


def _fully_unquoted(text: str) -> str:
    """Percent-decoded until nothing changes (a proxy may have encoded it twice)."""
    for _ in range(8):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _query_is_safe(query: str) -> bool:
    for pair in query.split("&"):
        if not pair:
            continue
        # Decoded first: "%74oken=" is "token=" to the application, and "token%3D<secret>"
        # is a key holding the secret.
        key = _fully_unquoted(unquote_plus(pair.split("=", 1)[0])).strip().lower()
        if key not in _SAFE_QUERY_KEYS:
            return False
    return True


def _mask_url(url: str) -> str:
    # Keep trailing prose punctuation out of the URL ("see https://x/y).").
    tail = ""
    while url and url[-1] in _TRAILING_PUNCT:
        tail = url[-1] + tail
        url = url[:-1]
    parts = _URL_PARTS.match(url)
    if parts is None:  # pragma: no cover - the url branch guarantees scheme://
        return REDACTED + tail
    scheme, netloc, path, query, fragment = parts.groups()
    if "@" in netloc:
        # user:password@ (or just a user, often an e-mail address): drop it all.
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    start_url = _START_PATH.search(path) is not None
    if start_url:
        path = _START_PATH.sub(lambda m: m.group(1) + "s/" + REDACTED, path, count=1)
    out = scheme + netloc + path
    if query is not None:
        out += "?" + (query if (not start_url and _query_is_safe(query)) else REDACTED)
    if fragment is not None:
        out += "#" + (REDACTED if ("=" in fragment or len(fragment) > 32) else fragment)
    # A token can still hide in the path ("/callback/eyJ...", "/users/a@b.org/...").
    return _scan(out, allow_url=False) + tail


_BASIC_CRED = re.compile(r"[0-9+/=]|.[A-Z]")


def _mask_basic(text: str) -> str:
    scheme, cred = text.split(None, 1)
    # "Basic authentication failed" is prose, "Basic dXNlcjpwYXNz" is a credential:
    # base64 of "id:secret" virtually always has a digit, + / =, or inner capitals.
    return scheme + " " + REDACTED if _BASIC_CRED.search(cred) else text


def _orphaned_value(s: str, start: int, end: int) -> int | None:
    """Where the value orphaned by masking ``s[start:end]`` ends, if there is one."""
    window = max(start, end - 80)
    gap = _GAP  # after "Bearer": a blank will do
    if _DANGLING_SCHEME.search(s, window, end) is None:
        key = _DANGLING_KEY.search(s, window, end)
        if key is None or not is_sensitive_key(key.group(1)):
            return None
        if key.group(3):  # the span ended in "name='": the value runs to the quote
            rest = _REST_OF_QUOTED[key.group(3)].match(s, end)
            return rest.end() if rest is not None else None
        # Ended in "name=": the value may follow directly. Ended in a bare word: only
        # a separator next makes it a key ("...zak=CANARY_ZAK (join" is not one).
        gap = _BLANKS if key.group(2) else _SEPARATOR
    between = gap.match(s, end)
    if between is None:
        return None
    value = _VALUE_RE.match(s, between.end())
    return value.end() if value is not None else None


def _mask_kv(m: re.Match[str]) -> tuple[str, int]:
    key_text = m.group(0)[: m.start("kv_sep") - m.start(0)]  # with any quotes
    sep = m.group("kv_sep")
    s, after = m.string, m.end()
    sensitive = is_sensitive_key(m.group("kv_key"))
    quoted = m.group("kv_q") or m.group("kv_cq") or s[after] in {'"', "'", "\\"}
    if sensitive and ":" in sep and not quoted:
        # Prose like "refresh token: invalid_grant" -- only mask for unmistakable keys.
        sensitive = _is_strong_colon_key(m.group("kv_key"))
    if not sensitive:
        # The key could still be the tail of a token ("xgAAAAA...="); the value is
        # scanned by the main loop, which resumes right after the separator. (Measuring
        # the value of every harmless pair would rescan "a:a:a:..." quadratically.)
        return _scan(key_text, allow_url=False) + sep, after
    key_text = _scan(key_text, allow_url=False)
    value = _VALUE_RE.match(s, after)
    if value is None:  # e.g. "password: )" -- nothing that could be a secret follows
        return key_text + sep, after
    text = value.group(0)
    for q in ('\\"', '"', "'"):  # keep the quoting so JSON-ish text stays JSON-ish
        if text.startswith(q) and text.endswith(q) and len(text) >= 2 * len(q):
            return key_text + sep + q + REDACTED + q, value.end()
    return key_text + sep + REDACTED, value.end()


def _replace(m: re.Match[str]) -> tuple[str, int]:
    """The replacement for one match and where scanning resumes."""
    kind = m.lastgroup
    text = m.group(0)
    end = m.end()
    if kind == "kv":
        return _mask_kv(m)
    if kind == "url":
        return _mask_url(text), end
    if kind == "bearer":
        return text.split(None, 1)[0] + " " + REDACTED, end
    if kind == "basic":
        masked = _mask_basic(text)
        if masked == text:  # prose: rescan what followed the word "basic"
            return text[:5], m.start() + 5
        return masked, end
    if kind == "header":
        return text.split(":", 1)[0] + ": " + REDACTED, end
    if kind == "spath":
        return "/s/" + REDACTED, end
    if kind == "secretpath":
        return "/" + _fully_unquoted(m.group("sp_name")).lower() + "/" + REDACTED, end
    if kind == "rquery":
        if _query_is_safe(text[1:]):
            return "?", m.start() + 1  # harmless names; their values are still scanned
        return "?" + REDACTED, end
    return REDACTED, end  # jwt, fernet, email, privkey


def mask_request_target(target: str) -> str:
    """An HTTP request target as a server logs it (raw path and query) with its credential
    parts masked by the path's structure, whatever the encoding.

    The path is percent-decoded until nothing changes (so "/%2573tart%252F..." counts as
    "/start/...") and everything after a segment named in SECRET_PATH_SEGMENTS, in any
    case, is masked. A query with any parameter not known to be harmless (``token=``,
    ``code=``, a bare value) is masked whole. Then scrub_text runs over the line as usual.
    """
    path, has_query, query = target.partition("?")
    segments = _fully_unquoted(path).split("/")
    for index, segment in enumerate(segments[:-1]):
        if segment.lower() in SECRET_PATH_SEGMENTS and any(segments[index + 1 :]):
            path = quote("/".join(segments[:index]), safe="/") + "/" + segment.lower() + "/" + REDACTED
            break
    if has_query:
        path += "?" + (query if query and _query_is_safe(query) else REDACTED)
    return path


def scrub_text(s: str) -> str:
    """Return *s* with every recognisable secret, credential and e-mail address masked.

    Masks JWT-like and ``Bearer``/``Basic`` tokens, Fernet tokens, e-mail addresses,
    URL credentials (``scheme://user:pass@host``), Zoom start URLs (``/s/<id>``), URL
    queries that carry anything but known-harmless parameters (``zak=``, ``pwd=``,
    ``tk=``, ``code=`` ...), private-key blocks, HTTP auth/cookie headers, and
    ``key=value`` / ``"key": "value"`` pairs whose key name is sensitive.
    """
    if not s:
        return s
    return _scan(s)


# --- Event dict processing -------------------------------------------------------------

_MAX_DEPTH: Final = 8
_ISO_TIMESTAMP: Final = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?")
_SCALARS: Final = (int, float, bool, type(None))
# structlog.stdlib.ProcessorFormatter's bookkeeping; removed before rendering.
_PASSTHROUGH_KEYS: Final = frozenset({"_record", "_from_structlog", "_logger", "_name"})


def _to_text(value: object) -> str:
    """Stringify a non-plain object ourselves, so renderers never repr() it unscrubbed."""
    try:
        if isinstance(value, BaseException):
            return f"{type(value).__name__}: {value}"
        if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
            return value.isoformat()
        if isinstance(value, Enum):
            return str(value.value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return repr(bytes(value))
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return f"<unprintable {type(value).__name__}>"


def redact_value(value: object, key: str | None = None, _depth: int = 0) -> object:
    """Redact one value found under *key* (``None`` for list items); returns a copy.

    Containers are rebuilt, never changed in place: the caller's objects are not ours.
    """
    if key is not None and key not in ALLOWED_KEYS and is_sensitive_key(key):
        # bool/None cannot carry a secret and say something useful ("password set?").
        return value if isinstance(value, (bool, type(None))) else REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, _SCALARS):
        return value
    if _depth >= _MAX_DEPTH:
        return "[TRUNCATED]"
    if isinstance(value, Mapping):
        out: dict[object, object] = {}
        for k, v in value.items():
            if isinstance(k, str):
                out[scrub_text(k)] = redact_value(v, k, _depth + 1)
            elif isinstance(k, _SCALARS):
                out[k] = redact_value(v, None, _depth + 1)
            else:
                out[scrub_text(_to_text(k))] = redact_value(v, None, _depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [redact_value(v, None, _depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return scrub_text(_to_text(value))


def redact_event_dict(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact sensitive keys and scrub every string, in place.

    Must run after ``format_exc_info`` so tracebacks are strings by now. If an
    ``exc_info`` is still here (a misordered chain), it is formatted here rather than
    left for a renderer that would print it raw.
    """
    if event_dict.get("exc_info"):
        event_dict = format_exc_info(logger, method, event_dict)
    for key, value in event_dict.items():
        if key in _PASSTHROUGH_KEYS:
            continue
        if key in ALLOWED_KEYS and isinstance(value, _SCALARS):
            continue
        if key == "timestamp" and isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value):
            continue  # our own TimeStamper's output: nothing to find, and it has colons
        event_dict[key] = redact_value(value, key)
    return event_dict
