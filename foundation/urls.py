"""URL safety: TLS everywhere, except plain HTTP to loopback (simulators, local tests)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, *, what: str) -> str:
    """TLS everywhere, except plain HTTP to loopback (simulators, local tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return url.rstrip("/")
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url.rstrip("/")
    raise ValueError(f"{what} must use https:// (plain http:// only for loopback addresses)")
