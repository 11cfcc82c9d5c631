"""TLS for every connection telemed opens: certificates verified, TLS 1.2 or newer.

Set here, in our own code, rather than left to library defaults (which have differed
between urllib3 releases and can be loosened by an OpenSSL configuration): the Zoom API
and OAuth calls, the status webhook and SMTP all build their contexts from this module.
"""

from __future__ import annotations

import ssl
from typing import Any

import requests
from requests.adapters import HTTPAdapter

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def secure_context() -> ssl.SSLContext:
    """The system trust store, host-name checks, TLS 1.2 or newer."""
    context = ssl.create_default_context()
    context.minimum_version = MINIMUM_VERSION
    return context


class Tls12Adapter(HTTPAdapter):
    """A requests adapter whose HTTPS connections use :func:`secure_context`.

    A session's ``verify`` (a CA bundle path) still applies: requests adds those CAs to
    this context; ``verify=False`` is never used by telemed.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = secure_context()
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through an HTTPS proxy the TLS session to the origin is ours to configure as well.
        proxy_kwargs.setdefault("ssl_context", secure_context())
        return super().proxy_manager_for(proxy, **proxy_kwargs)


def secure_session(session: requests.Session | None = None) -> requests.Session:
    """``session`` (or a new one) with every ``https://`` request going through :class:`Tls12Adapter`."""
    session = session or requests.Session()
    session.mount("https://", Tls12Adapter())
    return session
