"""A tripwire: a real local HTTP server that counts every TCP connection and request it gets.
A refused destination must leave it at zero connections, not merely zero requests."""

import datetime
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Tripwire(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", *, family: int = socket.AF_INET):
        self.address_family = family
        self.connections = 0
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.sni: list[str | None] = []
        self._lock = threading.Lock()
        super().__init__((host, 0), _Handler)

    def verify_request(self, request, client_address) -> bool:
        with self._lock:
            self.connections += 1
        return True

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, host: str | None = None, path: str = "/") -> str:
        host = host or self.server_address[0]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}{path}"

    def start(self) -> "Tripwire":
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server._lock:
            self.server.requests.append((self.command, self.path, dict(self.headers)))
        body = b'{"internal": "secret metadata"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def tripwire():
    server = Tripwire().start()
    yield server
    server.stop()


@pytest.fixture
def tripwire6():
    """The same on the IPv6 loopback (skipped where the host has none)."""
    try:
        server = Tripwire("::1", family=socket.AF_INET6).start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield server
    server.stop()


def self_signed(tmp_path, dns_name: str) -> tuple[str, str]:
    """A certificate (its own CA) for `dns_name` only, and its key: paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{dns_name}.pem", tmp_path / f"{dns_name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def https_tripwire(cert_path: str, key_path: str) -> Tripwire:
    """A tripwire on 127.0.0.1 speaking TLS with this certificate; it records the SNI it got."""
    server = Tripwire()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda sock, name, ctx: server.sni.append(name) and None
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server.start()
