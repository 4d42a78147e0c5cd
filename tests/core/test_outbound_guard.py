"""The outbound guard (SPEC §4): no outbound HTTP (webhooks, Twilio, FCM, the guard's own
transports) reaches loopback, private, link-local or otherwise non-public addresses unless
OUTBOUND_ALLOW_PRIVATE, checked on the address actually connected to. Every refusal is proven
against a real local server that must see no connection at all."""

import socket

import pytest
import requests
import urllib3
from django.core.checks import Error, Warning

from apps.core.checks import outbound_trust_check
from apps.core.outbound_guard import (
    DestinationNotAllowed,
    GuardedPoolManager,
    address_problem,
    ds_url_allowed,
    guarded_session,
)
from tests.push.conftest import fake_fcm  # noqa: F401  (fixture)
from tests.core.tripwire import https_tripwire, self_signed, tripwire, tripwire6  # noqa: F401  (fixtures)

PUBLIC = "93.184.215.14"  # a global address: checks pass; this sandbox refuses the connection


@pytest.fixture
def guarded(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_HTTP_TIMEOUT_SECONDS = 0.5


# ---------------------------------------------------------------- which addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.1.2.3", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.10",
        "::1", "::", "fe80::1", "fe80::1%1", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1", "64:ff9b::a00:1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert address_problem(address)


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert address_problem(address) == ""


# ---------------------------------------------------------------- the requests transport


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "127.1.1.1", "2130706433", "[::ffff:127.0.0.1]"],
    ids=["loopback", "a-name-resolving-to-loopback", "loopback-range", "decimal-ip", "ipv4-mapped-ipv6"],
)
def test_the_session_refuses_loopback_before_connecting(guarded, tripwire, host):
    url = f"http://{host}:{tripwire.port}/internal"
    with pytest.raises(DestinationNotAllowed):
        guarded_session().post(url, data=b"x", timeout=1)
    assert tripwire.connections == 0 and tripwire.requests == []


def test_the_session_refuses_the_ipv6_loopback(guarded, tripwire6):
    with pytest.raises(DestinationNotAllowed):
        guarded_session().post(tripwire6.url(), data=b"x", timeout=1)
    assert tripwire6.connections == 0


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080/", "http://169.254.169.254/latest/meta-data/", "https://192.168.0.1/"])
def test_the_session_refuses_private_and_link_local_addresses(guarded, url):
    with pytest.raises(DestinationNotAllowed) as exc:
        guarded_session().get(url, timeout=0.5)
    assert str(exc.value).startswith("Destination not allowed:")


def test_with_outbound_allow_private_the_same_request_reaches_the_server(settings, tripwire):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    response = guarded_session().post(tripwire.url("localhost", "/internal"), data=b"x", timeout=1)
    assert response.status_code == 200
    [(method, path, headers)] = tripwire.requests
    assert (method, path) == ("POST", "/internal")
    assert headers["Host"] == f"localhost:{tripwire.port}"  # the name, not the address connected to


class Rebinding:
    """A resolver for one name that answers a public address first, then 127.0.0.1: what an
    attacker's DNS server does with a zero TTL. Other names resolve for real."""

    def __init__(self, monkeypatch, name: str = "rebind.test"):
        self.name, self.calls, self.real = name, 0, socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, *args, **kwargs):
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        self.calls += 1
        address = PUBLIC if self.calls == 1 else "127.0.0.1"
        return self.real(address, port, *args, **kwargs)


def test_dns_rebinding_never_reaches_the_address_resolved_after_the_check(guarded, tripwire, monkeypatch):
    dns = Rebinding(monkeypatch)
    with pytest.raises(requests.ConnectionError) as exc:
        guarded_session().post(f"http://rebind.test:{tripwire.port}/internal", data=b"x", timeout=0.5)
    # One resolution, checked, and the connection went to that address: never a second look-up.
    assert dns.calls == 1 and PUBLIC in str(exc.value)
    assert tripwire.connections == 0
    # The next request resolves again and is refused.
    with pytest.raises(DestinationNotAllowed):
        guarded_session().post(f"http://rebind.test:{tripwire.port}/internal", data=b"x", timeout=0.5)
    assert dns.calls == 2 and tripwire.connections == 0


def test_a_name_with_one_private_address_among_public_ones_is_refused(guarded, tripwire, monkeypatch):
    real = socket.getaddrinfo

    def mixed(host, port, *args, **kwargs):
        if host == "mixed.test":
            return real(PUBLIC, port, *args, **kwargs) + real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    with pytest.raises(DestinationNotAllowed):
        guarded_session().get(f"http://mixed.test:{tripwire.port}/", timeout=0.5)
    assert tripwire.connections == 0


def test_tls_keeps_the_name_for_sni_and_the_certificate(settings, tmp_path):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    cert, key = self_signed(tmp_path, "localhost")
    server = https_tripwire(cert, key)
    try:
        response = guarded_session().get(f"https://localhost:{server.port}/x", verify=cert, timeout=2)
        assert response.status_code == 200
        assert server.sni == ["localhost"]
        assert server.requests[0][2]["Host"] == f"localhost:{server.port}"
        # urllib3 too (the Twilio transport)
        pool = GuardedPoolManager(cert_reqs="CERT_REQUIRED", ca_certs=cert, retries=False)
        assert pool.urlopen("GET", f"https://localhost:{server.port}/y").status == 200
        assert server.sni == ["localhost", "localhost"]
    finally:
        server.stop()


def test_tls_to_a_name_the_certificate_does_not_name_is_refused(settings, tmp_path):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    cert, key = self_signed(tmp_path, "other.example")
    server = https_tripwire(cert, key)
    try:
        with pytest.raises(requests.exceptions.SSLError):
            guarded_session().get(f"https://localhost:{server.port}/x", verify=cert, timeout=2)
        with pytest.raises(urllib3.exceptions.SSLError):
            GuardedPoolManager(cert_reqs="CERT_REQUIRED", ca_certs=cert, retries=False).urlopen(
                "GET", f"https://localhost:{server.port}/y"
            )
        assert server.requests == []
    finally:
        server.stop()


# ---------------------------------------------------------------- the urllib3 transport


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_the_pool_manager_refuses_loopback_before_connecting(guarded, tripwire, host):
    pool = GuardedPoolManager(retries=False)
    with pytest.raises(DestinationNotAllowed):
        pool.urlopen("POST", f"http://{host}:{tripwire.port}/internal", body=b"x")
    assert tripwire.connections == 0


def test_the_pool_manager_resolves_once(guarded, tripwire, monkeypatch):
    dns = Rebinding(monkeypatch)
    with pytest.raises(urllib3.exceptions.HTTPError) as exc:
        GuardedPoolManager(retries=False).urlopen("GET", f"http://rebind.test:{tripwire.port}/", timeout=0.5)
    assert dns.calls == 1 and PUBLIC in str(exc.value) and tripwire.connections == 0


# ---------------------------------------------------------------- providers


def test_twilio_at_a_private_base_url_is_a_permanent_error_without_a_request(guarded, tripwire, settings):
    from apps.sms.providers import PermanentSmsError, TwilioProvider

    settings.TWILIO_API_BASE_URL = tripwire.url("localhost").rstrip("/")
    provider = TwilioProvider(account_sid="AC" + "1" * 32, auth_token="t" * 32, from_number="+15005550006")
    with pytest.raises(PermanentSmsError) as exc:
        provider.send(to="+819012345678", body="123456 is your code", sender="")
    assert exc.value.code == "destination_not_allowed" and "Destination not allowed" in exc.value.message
    assert tripwire.connections == 0


def test_twilio_through_a_proxy_still_refuses_a_private_destination(guarded, tripwire, settings, monkeypatch):
    from apps.sms.providers import PermanentSmsError, TwilioProvider

    proxy = tripwire  # the proxy must not even be asked
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url().rstrip("/"))
    settings.TWILIO_API_BASE_URL = "http://169.254.169.254"
    provider = TwilioProvider(account_sid="AC" + "2" * 32, auth_token="t" * 32, from_number="+15005550006")
    with pytest.raises(PermanentSmsError) as exc:
        provider.send(to="+819012345678", body="123456 is your code", sender="")
    assert exc.value.code == "destination_not_allowed"
    assert proxy.connections == 0


def test_fcm_at_private_endpoints_is_a_permanent_error_without_a_request(guarded, tripwire, fake_fcm, settings):
    from apps.push.providers import PermanentPushError, push_provider

    settings.FCM_TOKEN_URI = tripwire.url("localhost", "/token")
    settings.FCM_API_BASE_URL = tripwire.url("127.0.0.1").rstrip("/")
    with pytest.raises(PermanentPushError) as exc:
        push_provider().send(platform="fcm", token="t" * 40, data={"type": "3ds_authn_request"})
    assert exc.value.code == "destination_not_allowed"
    assert tripwire.connections == 0


# ---------------------------------------------------------------- the DS endpoints


ALLOWLIST = ["https://ds.example/", "http://127.0.0.1:*/", "https://ds2.example:8443/3ds"]


@pytest.mark.parametrize(
    "url",
    [
        "https://ds.example/rreq", "https://DS.example/rreq", "https://ds.example:443/x", "https://ds.example",
        "http://127.0.0.1:8123/ds/rreq", "http://127.0.0.1/ds", "https://ds2.example:8443/3ds",
        "https://ds2.example:8443/3ds/rreq",
    ],
)
def test_ds_urls_under_an_entry_are_allowed(url):
    assert ds_url_allowed(url, ALLOWLIST)


@pytest.mark.parametrize(
    "url",
    [
        "http://ds.example/rreq",  # another scheme
        "https://ds.example.evil.example/rreq",  # a string prefix, not the host
        "https://ds.example@evil.example/rreq",  # userinfo
        "https://evil.example/https://ds.example/",
        "https://ds.example:8443/rreq",  # another port
        "http://localhost:8123/ds",  # another name for the same address is still another entry
        "http://127.0.0.2:8123/ds",
        "https://ds2.example:8443/3dsx", "https://ds2.example:8443/", "https://ds2.example:8443/3ds/../admin",
        "https://ds2.example:8443/3ds/%2e%2e/admin", "https://ds.example\\@evil.example/", "https://ds.example/ x",
        "ftp://ds.example/", "", "not a url", "https://ds.example:99999/",
    ],
)
def test_other_ds_urls_are_not(url):
    assert not ds_url_allowed(url, ALLOWLIST)


def test_an_empty_allowlist_allows_nothing():
    assert not ds_url_allowed("https://ds.example/rreq", [])


# ---------------------------------------------------------------- system checks


def test_the_deploy_check_refuses_an_empty_ds_allowlist_and_warns_about_private_destinations(settings):
    settings.DEBUG = False
    settings.DS_URL_ALLOWLIST = []
    settings.OUTBOUND_ALLOW_PRIVATE = True
    problems = outbound_trust_check(None)
    assert {(type(p), p.id) for p in problems} == {(Error, "core.E001"), (Warning, "core.W001")}
    settings.DS_URL_ALLOWLIST = ["https://ds.example/", "ds.example"]
    settings.OUTBOUND_ALLOW_PRIVATE = False
    assert [p.id for p in outbound_trust_check(None)] == ["core.E002"]
    settings.DS_URL_ALLOWLIST = ["https://ds.example/"]
    assert outbound_trust_check(None) == []



# ---------------------------------------------------------------- defaults (a real settings import)

PRODUCTION_KEYS = {
    "SECRET_KEY": "a-real-secret-key-of-enough-length-0123456789abcdef",
    "DATA_ENCRYPTION_KEYS": "k1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
    "PAN_FINGERPRINT_KEY": "a-real-fingerprint-key",
    "AUTHENTICATION_VALUE_KEYS": "av1:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
}


def _run(args, env_overrides):
    import os
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DS_URL_ALLOWLIST", "OUTBOUND_ALLOW_PRIVATE", *PRODUCTION_KEYS)}
    env.update(env_overrides, DJANGO_SETTINGS_MODULE="issuer_portal.settings")
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)


SHOW = ["-c", "import django; django.setup(); from django.conf import settings as s; print(s.DS_URL_ALLOWLIST, s.OUTBOUND_ALLOW_PRIVATE)"]


def test_development_defaults_let_the_local_simulator_be_the_ds():
    result = _run(SHOW, {"DEBUG": "1"})
    assert result.stdout.strip() == "['http://127.0.0.1:*/', 'http://localhost:*/'] True", result.stderr


def test_production_defaults_allow_no_ds_and_no_private_destination():
    result = _run(SHOW, {"DEBUG": "0", **PRODUCTION_KEYS})
    assert result.stdout.strip() == "[] False", result.stderr
    deploy = _run(["manage.py", "check", "--deploy"], {"DEBUG": "0", **PRODUCTION_KEYS})
    assert deploy.returncode != 0 and "core.E001" in deploy.stderr + deploy.stdout
    configured = _run(
        ["manage.py", "check", "--deploy"], {"DEBUG": "0", "DS_URL_ALLOWLIST": "https://ds.example/", **PRODUCTION_KEYS}
    )
    assert "core.E001" not in configured.stderr + configured.stdout and "core.W001" not in configured.stderr + configured.stdout
