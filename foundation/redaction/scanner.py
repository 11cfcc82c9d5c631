"""The content scanner (the second layer): masks secrets and addresses wherever they appear.

Cheap substring tests pick which pre-compiled branches can match at all; every branch
is linear in the input; one left-to-right pass, where a masked span that ends in an auth
scheme or a sensitive key also takes the value that follows (see the package docstring).
"""

from __future__ import annotations

import re
from typing import Final

from telemed.foundation.redaction.keys import REDACTED, is_sensitive_key, is_strong_colon_key
from telemed.foundation.redaction.paths import (
    SECRET_PATH_SEGMENTS,
    any_encoding,
    fully_unquoted,
    query_is_safe,
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


_SLASH: Final = any_encoding("/")
_SECRET_PATH: Final = (
    "(?i:" + _SLASH
    + "(?P<sp_name>" + "|".join(any_encoding(name) for name in SECRET_PATH_SEGMENTS) + ")"
    + _SLASH + r")[^\s\"'<>?#]+"
)
# "=" in any encoding: "?token%3D<secret>" still leaves a credential in the log line.
_EQUALS: Final = any_encoding("=")

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
        sensitive = is_strong_colon_key(m.group("kv_key"))
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

