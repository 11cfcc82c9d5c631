"""The content scanner (the second layer): masks secrets and addresses wherever they appear.

Cheap substring tests pick which pre-compiled branches can match at all; every branch
is linear in the input; one left-to-right pass, where a masked span that ends in an auth
scheme or a sensitive key also takes the value that follows (see the package docstring).
The patterns themselves are in ``patterns``.
"""

from __future__ import annotations

import re

from telemed.foundation.redaction.keys import REDACTED, is_sensitive_key, is_strong_colon_key
from telemed.foundation.redaction.paths import SECRET_PATH_SEGMENTS, fully_unquoted, query_is_safe
from telemed.foundation.redaction.patterns import (
    B_BASIC,
    B_BEARER,
    B_EMAIL,
    B_FERNET,
    B_HEADER,
    B_JWT,
    B_KV,
    B_PRIVKEY,
    B_RQUERY,
    B_SECRETPATH,
    B_SPATH,
    B_URL,
    BLANKS,
    DANGLING_KEY,
    DANGLING_SCHEME,
    EMAIL_LOCAL_CHARS,
    GAP,
    REST_OF_QUOTED,
    SEPARATOR,
    TOKEN_KINDS,
    TOKEN_RUN,
    VALUE_RE,
    pattern_for,
)


def _scan(s: str, allow_url: bool = True) -> str:
    # Which branches can possibly match, judged by cheap substring tests (each a C-level
    # memchr-style search). Most log strings trigger none, and every branch skipped
    # saves the regex engine a try at every position -- the key=value branch above all.
    mask = 0
    if "=" in s:
        mask |= B_KV
    if ":" in s:
        mask |= B_KV
        if allow_url and "://" in s:
            mask |= B_URL
        lowered = s.lower()
        if "authorization" in lowered or "cookie" in lowered or "api-key" in lowered:
            mask |= B_HEADER
    if "@" in s or "%40" in s:
        mask |= B_EMAIL
    if "?" in s:
        mask |= B_RQUERY
    if "/s/" in s:
        mask |= B_SPATH
    if "%" in s or ("/" in s and any(name in s.lower() for name in SECRET_PATH_SEGMENTS)):
        mask |= B_SECRETPATH
    if "eyJ" in s:
        mask |= B_JWT
    if "gAAAAA" in s:
        mask |= B_FERNET
    if "earer" in s or "EARER" in s:  # Bearer, bearer, BEARER
        mask |= B_BEARER
    if "asic" in s or "ASIC" in s:
        mask |= B_BASIC
    if "KEY-----" in s:
        mask |= B_PRIVKEY
    if not mask:
        return s
    pattern = pattern_for(mask)
    # A hand-rolled re.sub: a replacement may resume scanning before the match's end
    # (a harmless key=, a harmless "?") or skip past it (a sensitive key's value).
    out: list[str] = []
    pos = 0
    while (m := pattern.search(s, pos)) is not None:
        start = m.start()
        if m.lastgroup == "email":
            # The match starts at "@": walk back over the local part, but not into text
            # already handled (which a lookbehind would wrongly treat as context).
            while start > pos and s[start - 1] in EMAIL_LOCAL_CHARS:
                start -= 1
            if start == m.start():  # "@" with no local part: not an address
                out.append(s[pos : start + 1])
                pos = start + 1
                continue
        replacement, end = _replace(m)
        if m.lastgroup in TOKEN_KINDS and REDACTED in replacement:
            # A masked token takes the rest of its run with it ("a@b.org_x=eyJ...").
            end = TOKEN_RUN.match(s, end).end()  # type: ignore[union-attr]
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
        out += "?" + (query if (not start_url and query_is_safe(query)) else REDACTED)
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
    gap = GAP  # after "Bearer": a blank will do
    if DANGLING_SCHEME.search(s, window, end) is None:
        key = DANGLING_KEY.search(s, window, end)
        if key is None or not is_sensitive_key(key.group(1)):
            return None
        if key.group(3):  # the span ended in "name='": the value runs to the quote
            rest = REST_OF_QUOTED[key.group(3)].match(s, end)
            return rest.end() if rest is not None else None
        # Ended in "name=": the value may follow directly. Ended in a bare word: only
        # a separator next makes it a key ("...zak=CANARY_ZAK (join" is not one).
        gap = BLANKS if key.group(2) else SEPARATOR
    between = gap.match(s, end)
    if between is None:
        return None
    value = VALUE_RE.match(s, between.end())
    return value.end() if value is not None else None


def _mask_kv(m: re.Match[str]) -> tuple[str, int]:
    key_text = m.group(0)[: m.start("kv_sep") - m.start(0)]  # with any quotes
    sep = m.group("kv_sep")
    s, after = m.string, m.end()
    sensitive = is_sensitive_key(m.group("kv_key"))
    quoted = m.group("kv_q") or m.group("kv_cq") or s[after] in {'"', "'", "\\"}
    if sensitive and ":" in sep and not quoted:
        # Prose like "refresh token: invalid_grant" -- only mask for unmistakable keys.
        sensitive = is_strong_colon_key(m.group("kv_key"))
    if not sensitive:
        # The key could still be the tail of a token ("xgAAAAA...="); the value is
        # scanned by the main loop, which resumes right after the separator. (Measuring
        # the value of every harmless pair would rescan "a:a:a:..." quadratically.)
        return _scan(key_text, allow_url=False) + sep, after
    key_text = _scan(key_text, allow_url=False)
    value = VALUE_RE.match(s, after)
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
        return "/" + fully_unquoted(m.group("sp_name")).lower() + "/" + REDACTED, end
    if kind == "rquery":
        if query_is_safe(text[1:]):
            return "?", m.start() + 1  # harmless names; their values are still scanned
        return "?" + REDACTED, end
    return REDACTED, end  # jwt, fernet, email, privkey


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

