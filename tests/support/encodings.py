"""Percent-encodings as an attacker (or a proxy that encodes twice) would send them."""

from __future__ import annotations

from urllib.parse import unquote


def encoded(text: str, times: int = 1) -> str:
    """Every character percent-encoded, ``times`` over ("e" -> "%65" -> "%2565")."""
    for _ in range(times):
        text = "".join(f"%{ord(c):02X}" for c in text)
    return text


def fully_decoded(text: str) -> str:
    for _ in range(8):
        text = unquote(text)
    return text
