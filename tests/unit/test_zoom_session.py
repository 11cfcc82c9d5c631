"""The Zoom client's HTTP session reads proxy and CA settings from the environment once."""

from __future__ import annotations

import pytest

from telemed.zoom.client import environment_session


def test_proxy_from_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.hospital.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = environment_session("https://api.zoom.us/v2")
    assert session.trust_env is False  # not re-read on every request
    assert session.proxies.get("https") == "http://proxy.hospital.example:3128"


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.hospital.example:3128")
    monkeypatch.setenv("NO_PROXY", "api.zoom.us")
    assert environment_session("https://api.zoom.us/v2").proxies == {}


def test_ca_bundle_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/hospital-ca.pem")
    assert environment_session("https://api.zoom.us/v2").verify == "/etc/ssl/hospital-ca.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert environment_session("https://api.zoom.us/v2").verify is True
