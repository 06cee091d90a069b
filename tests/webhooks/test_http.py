"""The one outbound HTTP client: SSRF guard, pinned connections, no redirects."""

from __future__ import annotations

import datetime
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Response

from smsgate import http

UNSAFE = [
    "http://127.0.0.1/hook",
    "http://localhost/hook",
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://100.64.0.1/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "https://[fd00:ec2::254]/hook",
    "http://[64:ff9b::a9fe:a9fe]/hook",
    "http://user:pass@127.0.0.1:8080/hook",
]


@pytest.mark.parametrize("url", UNSAFE)
def test_every_refusal_names_the_setting_that_allows_private_addresses(
    url: str, settings: Any
) -> None:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(http.UnsafeDestination, match="SMSGATE_WEBHOOKS_ALLOW_PRIVATE=true"):
        http.check_destination(url)


def test_a_metadata_refusal_says_the_setting_does_not_lift_it() -> None:
    with pytest.raises(http.UnsafeDestination) as refused:
        http.check_destination("http://169.254.169.254/", allow_private=True)
    assert "SMSGATE_WEBHOOKS_ALLOW_PRIVATE=true does not lift this" in str(refused.value)


@pytest.mark.parametrize("url", UNSAFE)
def test_it_refuses_non_public_destinations(url: str, settings: Any) -> None:
    settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(http.UnsafeDestination):
        http.check_destination(url)
    with pytest.raises(http.UnsafeDestination):
        http.send("POST", url, json={"x": 1})


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://2852039166/",  # 169.254.169.254 as one decimal number
    ],
)
def test_metadata_addresses_stay_refused_when_private_ones_are_allowed(url: str) -> None:
    with pytest.raises(http.UnsafeDestination):
        http.check_destination(url, allow_private=True)


def test_a_public_address_passes_the_guard() -> None:
    http.check_destination("http://93.184.215.14/hook")  # checked without connecting


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "http:///nohost", "http://example.org:99999/", "not a url"]
)
def test_malformed_urls_are_outbound_errors(url: str) -> None:
    with pytest.raises(http.OutboundError) as caught:
        http.check_destination(url)
    assert not isinstance(caught.value, http.UnsafeDestination)


def test_it_sends_with_a_user_agent_and_returns_the_response(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("fine", status=202)
    response = http.send("POST", httpserver.url_for("/hook"), json={"a": 1}, allow_private=True)
    assert response.status_code == 202
    assert response.text == "fine"
    request = next(r for r, _ in httpserver.log if r.path == "/hook")
    assert request.headers["User-Agent"].startswith("smsgate/")
    assert request.get_json() == {"a": 1}


def test_a_redirect_to_loopback_is_returned_not_followed(httpserver: HTTPServer) -> None:
    target = httpserver.url_for("/internal-admin")
    httpserver.expect_request("/hook").respond_with_response(
        Response("", status=302, headers={"Location": target})
    )
    httpserver.expect_request("/internal-admin").respond_with_data("secret")
    response = http.send("POST", httpserver.url_for("/hook"), allow_private=True)
    assert response.status_code == 302
    assert "/internal-admin" not in [r.path for r, _ in httpserver.log]


def test_connection_errors_and_timeouts_are_outbound_errors(httpserver: HTTPServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    with pytest.raises(http.OutboundError):
        http.send("GET", f"http://127.0.0.1:{free_port}/", allow_private=True)

    def slow(request: Any) -> Response:
        threading.Event().wait(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(http.OutboundError, match="No answer"):
        http.send("GET", httpserver.url_for("/slow"), timeout=0.5, allow_private=True)


def test_it_connects_to_the_address_it_checked(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolves to the checked address once; a second lookup would
    answer something else, and must never happen."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.test":
            lookups.append(host)
            answer = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"
            return real_getaddrinfo(answer, *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    httpserver.expect_request("/hook").respond_with_data("pinned")
    url = f"http://hooks.rebind.test:{httpserver.port}/hook"
    response = http.send("POST", url, allow_private=True, timeout=3)
    assert response.text == "pinned"
    assert lookups == ["hooks.rebind.test"]
    request = next(r for r, _ in httpserver.log if r.path == "/hook")
    assert request.headers["Host"] == f"hooks.rebind.test:{httpserver.port}"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """A keep-alive HTTPS server on 127.0.0.1 with a certificate for hooks.example.test only,
    noting the SNI name of each TLS connection."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sni: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"tls ok for {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    def remember_sni(sock: Any, server_name: str | None, ctx: Any) -> None:
        sni.append(server_name or "")

    context.sni_callback = remember_sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, str(cert_path), sni
    server.shutdown()
    server.server_close()


@pytest.fixture
def names_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """*.example.test resolves to 127.0.0.1."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".example.test"):
            return real_getaddrinfo("127.0.0.1", *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback)


def test_tls_to_a_pinned_address_checks_the_name_not_the_address(
    tls_server: tuple[int, str, list[str]],
    names_on_loopback: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, ca, sni = tls_server
    monkeypatch.setattr(http, "_ca_bundle", lambda: ca)
    url = f"https://hooks.example.test:{port}/"
    response = http.send("GET", url, allow_private=True, timeout=5)
    assert response.text == f"tls ok for hooks.example.test:{port}"
    assert sni == ["hooks.example.test"]
    # Same address, another name the certificate does not cover: refused.
    with pytest.raises(http.OutboundError, match="The request failed"):
        http.send("GET", f"https://evil.example.test:{port}/", allow_private=True, timeout=5)


def test_kept_tls_connections_are_kept_per_name_not_per_address(
    tls_server: tuple[int, str, list[str]],
    names_on_loopback: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection verified for one name is never handed to a request for another name that
    resolves to the same address, even while it is open and fresh."""
    port, ca, sni = tls_server
    monkeypatch.setattr(http, "_ca_bundle", lambda: ca)
    good = f"https://hooks.example.test:{port}/"
    assert http.send("GET", good, allow_private=True, timeout=5).status_code == 200
    with pytest.raises(http.OutboundError):
        http.send("GET", f"https://evil.example.test:{port}/", allow_private=True, timeout=5)
    # The evil name got a TLS connection of its own (and failed the certificate check on it)…
    assert sni == ["hooks.example.test", "evil.example.test"]
    # …while the good name's kept connection still serves it, with no new handshake.
    assert http.send("GET", good, allow_private=True, timeout=5).status_code == 200
    assert sni == ["hooks.example.test", "evil.example.test"]


def test_a_huge_answer_is_read_only_up_to_the_limit(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * (http.MAX_RESPONSE_BYTES + 5000))
    response = http.send("GET", httpserver.url_for("/big"), allow_private=True)
    assert len(response.content) == http.MAX_RESPONSE_BYTES


def test_it_falls_back_to_the_next_checked_address_when_one_refuses_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        server.expect_request("/hook").respond_with_data("second address")
        real_getaddrinfo = socket.getaddrinfo

        def two_addresses(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "dual.example.test":
                # Nothing listens on 127.0.0.2, like an unrouted IPv6 address of a dual-stack host.
                return real_getaddrinfo("127.0.0.2", port, *args, **kwargs) + real_getaddrinfo(
                    "127.0.0.1", port, *args, **kwargs
                )
            return real_getaddrinfo(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
        url = f"http://dual.example.test:{server.port}/hook"
        response = http.send("POST", url, allow_private=True, timeout=3)
        assert response.text == "second address"
    finally:
        server.stop()


@pytest.fixture
def keepalive_server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """An HTTP/1.1 server that keeps connections open, noting each request's client port and
    Cookie header, and setting a cookie on every answer."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"port": self.client_address[1], "cookie": self.headers["Cookie"]})
            self.send_response(200)
            self.send_header("Set-Cookie", "session=tenant-a; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, seen
    server.shutdown()
    server.server_close()


def test_a_kept_connection_is_reused_but_every_request_is_checked_again(
    keepalive_server: tuple[int, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = keepalive_server
    real_getaddrinfo = socket.getaddrinfo
    answers = ["127.0.0.1", "127.0.0.1", "169.254.169.254"]
    lookups: list[str] = []

    def moving(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "keep.example.test":
            lookups.append(host)
            return real_getaddrinfo(answers[len(lookups) - 1], *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", moving)
    url = f"http://keep.example.test:{port}/hook"
    assert http.send("POST", url, data=b"1", allow_private=True, timeout=3).text == "ok"
    assert http.send("POST", url, data=b"2", allow_private=True, timeout=3).text == "ok"
    assert len(lookups) == 2
    assert len(seen) == 2
    assert seen[0]["port"] == seen[1]["port"]  # one TCP connection for both
    # The receiver's cookie is never sent back (the next request may be another tenant's).
    assert seen[1]["cookie"] is None
    # The name now resolves to a refused address: the open connection is not used.
    with pytest.raises(http.UnsafeDestination):
        http.send("POST", url, data=b"3", allow_private=True, timeout=3)
    assert len(seen) == 2


def test_an_idle_kept_connection_is_not_reused(
    keepalive_server: tuple[int, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = keepalive_server
    url = f"http://127.0.0.1:{port}/hook"
    http.send("POST", url, data=b"1", allow_private=True, timeout=3)
    monkeypatch.setattr(http, "KEEPALIVE_IDLE", 0.0)
    http.send("POST", url, data=b"2", allow_private=True, timeout=3)
    assert seen[0]["port"] != seen[1]["port"]


def test_proxy_settings_in_the_environment_are_ignored(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would connect wherever it likes, after our address check."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://192.0.2.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    httpserver.expect_request("/hook").respond_with_data("direct")
    response = http.send("POST", httpserver.url_for("/hook"), allow_private=True, timeout=3)
    assert response.text == "direct"


def test_a_kept_alive_post_stays_within_its_python_call_budget(
    keepalive_server: tuple[int, list[dict[str, Any]]],
) -> None:
    """HTTP is written and parsed in C (libcurl): what is left in Python per request is the
    address check, the request's shape and the answer's. A webhook fan-out makes one of these
    per delivery; through urllib3 and http.client it took about 1,250 Python calls."""
    port, seen = keepalive_server
    url = f"http://127.0.0.1:{port}/hook"
    headers = {"Content-Type": "application/json", "webhook-id": "msg_1"}
    http.send("POST", url, data=b"{}", headers=headers, allow_private=True, timeout=3)
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        response = http.send("POST", url, data=b"{}", headers=headers, allow_private=True)
    finally:
        sys.setprofile(None)
    assert response.text == "ok"
    assert seen[0]["port"] == seen[1]["port"]  # the kept connection, as in a fan-out
    assert calls <= 400, calls
