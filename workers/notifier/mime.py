"""Cheap builders for the MIME tree of a notification mail (``email.message.Message``).

The modern API (``EmailMessage`` with ``email.policy.default``) parses and refolds every
header through the header registry on each assignment and on every ``set_content``: that
was most of the CPU a worker spent per mail. Here each part is a plain compat32
``Message`` whose headers are set as ready strings and whose body is encoded once, the way
``email.policy.default`` encodes it (same quoted-printable and base64 line lengths, same
line endings), so the bytes on the wire stay what they were.

Header values are the caller's to check (links, one line); these helpers only encode:
RFC 2047 for anything that is not plain ASCII, and they refuse line breaks outright, as
compat32 would otherwise write them out as they are.
"""

from __future__ import annotations

import base64
import re
import secrets
import sys
from collections.abc import Iterable
from email import quoprimime
from email.errors import HeaderParseError
from email.header import Header, decode_header
from email.message import Message
from email.policy import Compat32
from email.utils import formataddr

from telemed.workers.notifier.errors import InvalidMessage

# ``email.policy.default.max_line_length``: the quoted-printable and base64 line length
# the modern API used, kept so that a body encodes to exactly the bytes it did before.
MAX_LINE_LENGTH = 78
# Every character ``str.splitlines`` breaks on: compat32 would fold a header there.
_LINE_BREAK = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


class HeaderValueError(InvalidMessage):
    """A header value that cannot be written safely (a line break, a non-ASCII address)."""


class _Compat32(Compat32):
    """compat32, writing a header that needs no folding as it is.

    compat32 runs every header through ``email.header.Header`` to fold it, the largest
    cost left in writing a mail out. A one-line ASCII value that fits comes out of that
    unchanged, so it is written directly; anything else still goes the long way.
    """

    def _fits(self, name: str, value: object) -> bool:
        limit = self.max_line_length
        return (
            isinstance(value, str)
            and value.isascii()
            and limit is not None
            and len(name) + len(value) + 2 <= limit
            and not _LINE_BREAK.search(value)
        )

    def fold(self, name: str, value: str) -> str:
        if self._fits(name, value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if self._fits(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Compat32()


def one_line(name: str, value: str) -> str:
    """``value`` if it holds no line break; a line break could start a header of its own."""
    if _LINE_BREAK.search(value):
        raise HeaderValueError(f"{name}: must be one line")
    return value


def leaf(headers: Iterable[tuple[str, str]], payload: str) -> Message:
    """A non-multipart part with these headers (in this order) and an encoded body."""
    part = Message(policy=POLICY)
    for name, value in headers:
        part[name] = value
    part.set_payload(payload)
    return part


def multipart(headers: Iterable[tuple[str, str]], parts: list[Message]) -> Message:
    """A multipart part with these headers, its Content-Type last (boundary included)."""
    message = Message(policy=POLICY)
    for name, value in headers:
        message[name] = value
    message.set_payload(list(parts))
    return message


def boundary() -> str:
    """A multipart boundary in the generator's own format, chosen now.

    Left to the generator, a boundary is picked at the first ``as_bytes`` (which then
    changes the message) after a search of every body for it with a freshly compiled
    regex. No line of a quoted-printable or base64 body (all our parts are one or the
    other) can hold "==", so a boundary made of "=" runs can never collide with one.
    """
    return "=" * 15 + f"{secrets.randbelow(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="


def multipart_type(subtype: str) -> str:
    """A Content-Type value for ``multipart/<subtype>`` with a fresh boundary."""
    return f'multipart/{subtype}; boundary="{boundary()}"'


def quoted_printable(text: str) -> str:
    """``text`` as utf-8 quoted-printable, line ends normalised to LF and a final LF
    added, as ``EmailMessage.set_content(text, cte="quoted-printable")`` writes it."""
    return quoprimime.body_encode(text_lines(text).decode("latin-1"), MAX_LINE_LENGTH)


def base64_body(data: bytes) -> str:
    """``data`` as base64 in lines of 76 characters, each ending in LF."""
    return base64.encodebytes(data).decode("ascii")


def text_lines(text: str) -> bytes:
    """``text`` as utf-8 with its lines joined by LF and a final LF: how ``set_content``
    prepares a text part before quoted-printable or base64."""
    return b"\n".join(text.encode("utf-8").splitlines()) + b"\n"


def _needs_encoding(text: str) -> bool:
    # "=?" in plain text would be read as the start of an encoded word: encode it too.
    return not text.isascii() or "=?" in text


def unstructured(name: str, value: str) -> str:
    """A free-text header value (Subject), RFC 2047-encoded unless it is plain ASCII."""
    one_line(name, value)
    if not _needs_encoding(value):
        return value
    return Header(value, "utf-8", header_name=name).encode()


def address(name: str, display_name: str, addr_spec: str) -> str:
    """``Display Name <addr@domain>``; the name quoted or RFC 2047-encoded as needed."""
    one_line(name, display_name)
    one_line(name, addr_spec)
    if not addr_spec.isascii():
        raise HeaderValueError(f"{name}: the address must be ASCII")
    if not display_name or not _needs_encoding(display_name):
        return formataddr((display_name, addr_spec))
    encoded = Header(display_name, "utf-8", header_name=name).encode()
    return f"{encoded} <{addr_spec}>"


def decoded(value: str) -> str:
    """A header value with any RFC 2047 encoded words decoded, leniently (bad bytes or an
    unknown charset decode as utf-8 with replacements): what a mail client shows."""
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except HeaderParseError:  # not decodable: a client shows it as it is
        return value
    pieces = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            pieces.append(chunk)
            continue
        try:  # decode_header gives plain text as raw-unicode-escape bytes
            pieces.append(chunk.decode(charset or "raw-unicode-escape", "replace"))
        except LookupError:
            pieces.append(chunk.decode("utf-8", "replace"))
    return "".join(pieces)


def leaf_texts(message: Message) -> Iterable[str]:
    """The decoded content of every leaf part: transfer encoding undone, then the part's
    charset (utf-8 when it names none or an unknown one)."""
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            yield payload.decode(charset, "replace")
        except LookupError:
            yield payload.decode("utf-8", "replace")
