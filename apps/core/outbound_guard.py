"""Where outbound HTTP may go (SPEC §4, trust at the edges).

Two rules, one module, used by every outbound path (webhooks, RReq, Twilio, FCM):

* `ds_url_allowed`: an AReq's dsURL must be under one of the configured DS endpoints
  (`DS_URL_ALLOWLIST`, URL prefixes; `http://127.0.0.1:*/` matches any port). Compared by parts
  (scheme, host, port, path segments), never as a raw string prefix, so that
  `https://ds.example.evil/` or `https://ds.example@evil/` never pass for `https://ds.example/`.
* `checked_address`: a destination's name is resolved once, every address it resolves to is
  checked (no loopback, private, link-local, multicast, reserved or otherwise non-global address,
  IPv4-mapped IPv6 included, unless `OUTBOUND_ALLOW_PRIVATE`), and the connection is made to that
  very address. A second resolution by the HTTP library (DNS rebinding: public when checked,
  127.0.0.1 when connected) never happens. The Host header, TLS SNI and certificate verification
  still use the name.

`guarded_session()` (requests) and `GuardedPoolManager` (urllib3) apply the second rule through
the libraries' documented extension points: `HTTPAdapter.send` and
`build_connection_pool_key_attributes`, `PoolManager.connection_from_host` with pool kwargs
`server_hostname` / `assert_hostname`.
"""

import ipaddress
import socket
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}
# IPv4 embedded in IPv6 by NAT64 (RFC 6052): what it reaches is the embedded address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationNotAllowed(Exception):
    """Outbound HTTP refused before any connection: never worth another try."""

    def __init__(self, reason: str):
        super().__init__(f"Destination not allowed: {reason}")
        self.reason = reason


# ---------------------------------------------------------------- addresses


def address_problem(address: str) -> str:
    """Why `address` is not a public destination, or "" when it is one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id names no host
    except ValueError:
        return "not an IP address"
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return address_problem(str(embedded))
    for label, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"a {label} address"
    if not ip.is_global:  # shared address space 100.64/10, documentation ranges, ...
        return "not a public address"
    return ""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (one look-up; the caller connects to one of these)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_address(host: str | None, port: int) -> str:
    """The address to connect to for `host`, resolved once and checked. Raises
    DestinationNotAllowed. Every address of the name must pass, not only the one used: a name
    that mixes public and private addresses is refused."""
    if not host:
        raise DestinationNotAllowed("no host")
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        # Not a refusal: a name that does not resolve now may resolve later (the caller retries).
        raise requests.ConnectionError(f"{host} does not resolve: {exc.__class__.__name__}") from None
    if not addresses:
        raise requests.ConnectionError(f"{host} does not resolve")
    if not settings.OUTBOUND_ALLOW_PRIVATE:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                shown = host if host == address else f"{host} ({address})"
                raise DestinationNotAllowed(f"{shown} is {problem}")
    return addresses[0]


def _host_header(scheme: str, host: str, port: int | None) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port in (None, DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"


# ---------------------------------------------------------------- requests


class GuardedAdapter(HTTPAdapter):
    """A requests transport that connects only to the checked address of the URL's host."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme, 80)
        if select_proxy(request.url, proxies):
            # Through an operator's proxy the proxy resolves and connects: a name that resolves
            # here to a refused address is refused, one that does not resolve here is left to
            # the proxy's own egress rules (documented in the README).
            try:
                checked_address(parts.hostname, port)
            except requests.ConnectionError:
                pass
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        address = checked_address(parts.hostname, port)
        request.headers["Host"] = _host_header(scheme, parts.hostname, parts.port)
        request.guard_target = (address, parts.hostname)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        target = getattr(request, "guard_target", None)
        if target is not None:
            address, name = target
            host_params["host"] = address  # the pool connects here, and nowhere resolved later
            if host_params["scheme"] == "https":
                pool_kwargs["server_hostname"] = name  # SNI
                pool_kwargs["assert_hostname"] = name  # the certificate is checked for the name
        return host_params, pool_kwargs


def guarded_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", GuardedAdapter())
    session.mount("https://", GuardedAdapter())
    return session


# ---------------------------------------------------------------- urllib3


class GuardedPoolManager(urllib3.PoolManager):
    """A urllib3 pool manager that connects only to the checked address of the URL's host.
    It never follows redirects (a redirect would be another destination to check); the callers
    here never ask it to."""

    def urlopen(self, method, url, redirect=True, **kw):
        u = parse_url(url)
        scheme = (u.scheme or "http").lower()
        port = u.port or DEFAULT_PORTS.get(scheme, 80)
        name = (u.host or "").strip("[]")  # urllib3 keeps an IPv6 literal's brackets
        address = checked_address(name, port)
        headers = dict(kw.pop("headers", None) or self.headers)
        headers = {k: v for k, v in headers.items() if k.lower() != "host"}
        headers["Host"] = _host_header(scheme, name, u.port)
        pool_kwargs = {"server_hostname": name, "assert_hostname": name} if scheme == "https" else None
        conn = self.connection_from_host(address, port=port, scheme=scheme, pool_kwargs=pool_kwargs)
        kw.setdefault("assert_same_host", False)
        return conn.urlopen(method, u.request_uri, headers=headers, redirect=False, **kw)


# ---------------------------------------------------------------- the DS endpoints


def allowlist_entry_parts(entry: str) -> tuple[str, str, str, str] | None:
    """(scheme, host, port or "*", path prefix) of an allowlist entry, None if unreadable."""
    parts = urlsplit(entry.strip())
    netloc = parts.netloc
    if "@" in netloc or parts.scheme.lower() not in DEFAULT_PORTS:
        return None
    port = ""
    if netloc.endswith(":*"):
        netloc, port = netloc[:-2], "*"
    try:
        parsed = urlsplit(f"{parts.scheme}://{netloc}")
        host, explicit = parsed.hostname, parsed.port
    except ValueError:
        return None
    if not host:
        return None
    scheme = parts.scheme.lower()
    port = port or str(explicit or DEFAULT_PORTS[scheme])
    return scheme, host.lower(), port, parts.path or "/"


def _path_under(path: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def ds_url_allowed(url: str, allowlist: list[str] | None = None) -> bool:
    """True when `url` is under one of the DS endpoints (`DS_URL_ALLOWLIST`). An empty list
    allows nothing."""
    allowlist = settings.DS_URL_ALLOWLIST if allowlist is None else allowlist
    if not isinstance(url, str) or "\\" in url or any(ord(c) < 0x21 for c in url):
        return False
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc:
        return False
    path = parts.path or "/"
    # No dot segments, plain or percent-encoded: the library would send a path other than the
    # one compared.
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return False
    port = str(port or DEFAULT_PORTS[scheme])
    for entry in allowlist:
        allowed = allowlist_entry_parts(entry)
        if allowed is None:
            continue
        a_scheme, a_host, a_port, a_path = allowed
        if scheme == a_scheme and host.lower() == a_host and a_port in ("*", port) and _path_under(path, a_path):
            return True
    return False
