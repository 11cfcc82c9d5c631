"""The content scanner's patterns: one regex branch per kind of secret, compiled once per
combination of branches that a string's cheap substring tests leave possible."""

from __future__ import annotations

import re
from typing import Final

from telemed.foundation.redaction.paths import SECRET_PATH_SEGMENTS, any_encoding

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

VALUE_RE: Final = re.compile(_VALUE)
# The tail of a masked span that gave the *next* value its meaning: an auth scheme, or
# a key (with or without its separator) -- "?x=basic <b64>", "?x=password: <secret>".
DANGLING_SCHEME: Final = re.compile(r"(?i:bearer|basic|token|digest|negotiate)[ \t]*$")
DANGLING_KEY: Final = re.compile(
    r"([A-Za-z0-9_.\-]+)[\"']?[ \t]*([=:]?)[ \t]*([\"']?)$"
)
# The rest of a quoted value whose opening quote was inside the masked span.
REST_OF_QUOTED: Final = {q: re.compile(rf"[^{q}\n]*{q}?") for q in ('"', "'")}
# Between a dangling key/scheme and its value: a separator or at least a blank. Nothing
# at all means the next text is glued on and gets scanned in its own right.
BLANKS: Final = re.compile(r"[ \t]*")
SEPARATOR: Final = re.compile(r"[\"']?[ \t]*[=:][ \t]*")
GAP: Final = re.compile(r"[\"']?[ \t]*[=:][ \t]*|[ \t]+")


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
    # pass, and only a sensitive key's value is measured (by VALUE_RE) and skipped.
    "kv": r"(?P<kv_q>\\?[\"'])?(?<![A-Za-z0-9_.\-])(?P<kv_key>[A-Za-z0-9_.\-]++)"
          r"(?P<kv_cq>\\?[\"'])?(?P<kv_sep>[ \t]*[=:][ \t]*)(?=\S)",
}


_ORDER: Final = tuple(_BRANCHES)
TOKEN_KINDS: Final = frozenset({"jwt", "fernet", "email", "bearer", "basic"})
TOKEN_RUN: Final = re.compile(r"[A-Za-z0-9_\-=+/~%]*(?:\.[A-Za-z0-9_\-=+/~%]+)*")
EMAIL_LOCAL_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
)
_PATTERNS: dict[int, re.Pattern[str]] = {}


def pattern_for(mask: int) -> re.Pattern[str]:
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
B_PRIVKEY, B_URL, B_BEARER, B_BASIC, B_HEADER = (
    _BIT[n] for n in ("privkey", "url", "bearer", "basic", "header")
)
B_JWT, B_FERNET, B_EMAIL, B_SPATH, B_SECRETPATH, B_RQUERY, B_KV = (
    _BIT[n] for n in ("jwt", "fernet", "email", "spath", "secretpath", "rquery", "kv")
)
