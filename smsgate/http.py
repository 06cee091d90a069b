"""The one outbound HTTP client of smsgate (webhooks, cloud providers).

Every request to a URL someone else chose goes through `send`, which:

- resolves the host itself and refuses addresses a tenant must not reach through us (SSRF):
  loopback, private, link-local, CGNAT, multicast, unspecified, reserved, IPv4-mapped/NAT64
  forms of those, and the cloud metadata addresses. `SMSGATE_WEBHOOKS_ALLOW_PRIVATE=true`
  lifts the guard for development, except for metadata addresses, which stay refused;
- then connects to the very address it checked (the host is never resolved a second time,
  so DNS rebinding between the check and the connection is impossible), sending the original
  Host header and, for TLS, the original name for SNI and certificate checks;
- never follows redirects (a 3xx comes back as a response), ignores proxy environment
  variables (a proxy would make the address check meaningless), keeps no cookies, sends a
  User-Agent, and bounds both the time (the whole request, connection included, within
  `timeout`) and the size of the body read;
- keeps connections open for the next request to the same checked address and name (a worker
  fanning events out to one receiver would otherwise open a TCP/TLS connection per delivery).
  The host is still resolved and checked on every request, and a kept connection is reused
  only when that fresh check picks the same address. Connections are kept per thread (and
  dropped in a forked child), and one idle for a second is not reused.

Requests go out through libcurl (pycurl): one handle per thread and destination, whose
connection stays open. HTTP is written and parsed in C, where urllib3 and http.client spent
most of a webhook delivery's CPU in Python; `smsgate.http_wire` shapes each request as requests
did and hands the answer back as a `requests.Response`.

Requests made side by side (a batch of webhook deliveries) run on `side_by_side`, one
process-wide pool of threads: each thread keeps its own handles, so a receiver's connections
stay open from one batch to the next, and each request keeps its own timeout, so a slow
receiver holds one thread, not the others. libcurl lets go of the GIL while it waits.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pycurl
from django.conf import settings
from requests import Response, certs
from urllib3 import HTTPHeaderDict

from smsgate import http_wire

__all__ = [
    "OutboundError",
    "UnresolvableHost",
    "UnsafeDestination",
    "check_destination",
    "send",
    "side_by_side",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_T = TypeVar("_T")

# Bodies are read for excerpts and small JSON answers; a receiver cannot make us buffer more.
MAX_RESPONSE_BYTES = 1024 * 1024
# Addresses of one name tried in turn when a connection cannot be opened (dual stack).
MAX_ADDRESSES_TRIED = 3
# Kept-open connections: receivers close idle ones after a few seconds (gunicorn 2 s, Node and
# uvicorn 5 s); reusing only connections idle for less than this keeps us clear of the race
# where the receiver closes one just as we send on it. Under fan-out load the gap is far less.
KEEPALIVE_IDLE = 1.0
# Distinct (address, port, name) destinations whose connections one thread keeps open.
MAX_KEPT_SESSIONS = 32

# Cloud instance-metadata services: credentials live there, so they are refused even when
# private addresses are allowed (AWS/GCP/Azure/OpenStack, AWS ECS and its IPv6 form,
# Alibaba, Oracle).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "192.0.0.192",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _version() -> str:
    try:
        return metadata.version("smsgate")
    except metadata.PackageNotFoundError:
        return "0"


USER_AGENT = f"smsgate/{_version()}"
_DEFAULT_HEADERS = http_wire.default_headers(USER_AGENT)


class OutboundError(Exception):
    """The request could not be made: connection error, timeout, bad URL."""


class UnsafeDestination(OutboundError):
    """The URL resolves to an address the SSRF guard refuses."""


class UnresolvableHost(OutboundError):
    """The host name does not resolve (now): a temporary failure for a delivery."""


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (::ffff:a.b.c.d, 64:ff9b::a.b.c.d, 6to4)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def _refusal(address: IPAddress, allow_private: bool) -> str | None:
    """Why this address is refused, or None when it may be contacted."""
    candidates = [address]
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        candidates.append(embedded)
    for candidate in candidates:
        if candidate in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if candidate.is_multicast:
            return "a multicast address"
    if allow_private:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # No public service needs ::ffff:a.b.c.d, and stacks disagree on where it leads.
        return "an IPv4-mapped IPv6 address"
    if embedded is not None and _refusal(embedded, allow_private) is not None:
        # NAT64 / 6to4 forms are judged by the IPv4 address they reach.
        return "an IPv6 form of a non-public IPv4 address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address (e.g. CGNAT 100.64.0.0/10)"
    return None


ALLOW_PRIVATE_SETTING = "SMSGATE_WEBHOOKS_ALLOW_PRIVATE"


def _refusal_message(host: str, address: IPAddress, reason: str) -> str:
    """The refusal, with the setting that would lift it (or the fact that none does): a user
    whose receiver runs on localhost must learn how to allow it from the message alone."""
    refused = f"{host} resolves to {address}, {reason}; it is refused."
    if _refusal(address, allow_private=True) is not None:
        return f"{refused} {ALLOW_PRIVATE_SETTING}=true does not lift this."
    return (
        f"{refused} Private addresses are refused unless {ALLOW_PRIVATE_SETTING}=true "
        "(meant for development; ./start sets it)."
    )


def _split(url: str) -> tuple[str, str, int]:
    """Scheme, host (no brackets) and port of an http(s) URL; OutboundError when malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundError(f"The URL is not valid: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundError("Only http and https URLs can be called.")
    host = parts.hostname
    if not host:
        raise OutboundError("The URL has no host.")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to. Numeric forms (`2130706433`, `0x7f.1`, `0177.0.0.1`)
    go through the same resolver the socket would use, so they cannot slip past as names."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror is an OSError
        raise UnresolvableHost(f"The host {host!r} cannot be resolved.") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        address = ipaddress.ip_address(raw)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(f"The host {host!r} cannot be resolved.")
    return addresses


def _allow(allow_private: bool | None) -> bool:
    if allow_private is None:
        return bool(getattr(settings, "SMSGATE_WEBHOOKS_ALLOW_PRIVATE", False))
    return allow_private


def _checked_addresses(
    url: str, allow_private: bool | None
) -> tuple[str, str, int, list[IPAddress]]:
    scheme, host, port = _split(url)
    allowed = _allow(allow_private)
    addresses = _resolve(host, port)
    # Every address must pass: a name resolving to one public and one private address is
    # refused rather than connected to whichever comes first.
    for address in addresses:
        reason = _refusal(address, allowed)
        if reason is not None:
            raise UnsafeDestination(_refusal_message(host, address, reason))
    return scheme, host, port, addresses


def check_destination(url: str, *, allow_private: bool | None = None) -> None:
    """Raise UnsafeDestination (or OutboundError for a malformed URL) unless `url` may be called.

    `allow_private=None` follows `settings.SMSGATE_WEBHOOKS_ALLOW_PRIVATE`.
    """
    _checked_addresses(url, allow_private)


class _Answer:
    """What one transfer brought back: the last header block (a `100 Continue` starts a new
    one) and the body, cut at MAX_RESPONSE_BYTES."""

    __slots__ = ("body", "cut", "header_lines", "size")

    def __init__(self) -> None:
        self.header_lines: list[bytes] = []
        self.body: list[bytes] = []
        self.size = 0
        self.cut = False

    def header(self, line: bytes) -> None:
        if line.startswith(b"HTTP/"):
            self.header_lines = []
        self.header_lines.append(line)

    def write(self, chunk: bytes) -> int | None:
        self.body.append(chunk)
        self.size += len(chunk)
        if self.size >= MAX_RESPONSE_BYTES:
            self.cut = True
            return 0  # libcurl stops the transfer (CURLE_WRITE_ERROR)
        return None

    def status_line_and_headers(self) -> tuple[str, HTTPHeaderDict]:
        reason = ""
        headers = HTTPHeaderDict()
        for raw in self.header_lines:
            line = raw.decode("latin-1").rstrip("\r\n")
            if line.startswith("HTTP/"):
                parts = line.split(" ", 2)
                reason = parts[2] if len(parts) > 2 else ""
            elif ":" in line:
                name, value = line.split(":", 1)
                headers.add(name.strip(), value.strip())
        return reason, headers


def _ca_bundle() -> str:
    """The certificates requests trusts (certifi's bundle, not the environment's)."""
    return certs.where()


# (scheme, checked address, port, host name)
_HandleKey = tuple[str, str, int, str]


class _Handles(threading.local):
    """This thread's libcurl handles by _HandleKey, least recent first, with when each was last
    used. A handle keeps its connection open for the next request to the same key."""

    def __init__(self) -> None:
        self.by_key: OrderedDict[_HandleKey, tuple[pycurl.Curl, float]] = OrderedDict()


_handles = _Handles()
# Handles a forked child inherited: never used, and never freed either (freeing one could
# close, or end the TLS session of, a connection its parent still uses).
_inherited: list[_Handles] = []


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_handles() -> None:
    # A forked child (a Celery prefork worker) must not share its parent's sockets, and
    # inherits none of its threads: the pool starts afresh there.
    global _handles, _pool, _pool_lock
    _inherited.append(_handles)
    _handles = _Handles()
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_handles)


def _handle_for(key: _HandleKey) -> pycurl.Curl:
    """A handle for this checked address and name, kept from an earlier request when fresh."""
    kept = _handles.by_key.pop(key, None)
    if kept is not None:
        handle, last_used = kept
        if time.monotonic() - last_used < KEEPALIVE_IDLE:
            return handle
        handle.close()
    return pycurl.Curl()


def _keep(key: _HandleKey, handle: pycurl.Curl) -> None:
    kept = _handles.by_key
    kept[key] = (handle, time.monotonic())
    while len(kept) > MAX_KEPT_SESSIONS:
        _, (oldest, _) = kept.popitem(last=False)
        oldest.close()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _prepare(
    handle: pycurl.Curl,
    key: _HandleKey,
    method: str,
    out: http_wire.Outgoing,
    timeout: float,
    answer: _Answer,
) -> None:
    """Set every option of this request on a handle that may have served another one (reset
    forgets the options, not the open connection)."""
    scheme, address, port, host = key
    handle.reset()
    # The URL names the host (Host header, SNI and certificate name); CONNECT_TO dials the
    # address that was checked, so nothing is resolved a second time.
    handle.setopt(pycurl.URL, f"{scheme}://{_bracketed(host)}:{port}{out.target}")
    handle.setopt(pycurl.CONNECT_TO, [f"{_bracketed(host)}:{port}:{_bracketed(address)}:{port}"])
    handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    handle.setopt(pycurl.FOLLOWLOCATION, 0)
    handle.setopt(pycurl.PROXY, "")  # an empty proxy overrides the environment's
    handle.setopt(pycurl.NOSIGNAL, 1)
    handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
    handle.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout * 1000)))
    if scheme == "https":
        handle.setopt(pycurl.CAINFO, _ca_bundle())
        handle.setopt(pycurl.SSL_VERIFYPEER, 1)
        handle.setopt(pycurl.SSL_VERIFYHOST, 2)
    headers = [f"{name}: {value}" for name, value in out.headers.items()]
    # libcurl's own additions, which requests never sent: "Expect: 100-continue" before a
    # large body, and a form Content-Type on every body.
    headers.append("Expect:")
    if not any(name.lower() == "content-type" for name in out.headers):
        headers.append("Content-Type:")
    handle.setopt(pycurl.HTTPHEADER, headers)
    # Undo the Content-Encoding we asked for (we send requests' Accept-Encoding ourselves).
    handle.setopt(pycurl.ACCEPT_ENCODING, out.headers.get("Accept-Encoding", "gzip, deflate"))
    if method == "HEAD":
        handle.setopt(pycurl.NOBODY, 1)
    elif method == "GET" and out.body is None:
        handle.setopt(pycurl.HTTPGET, 1)
    else:
        # requests sent Content-Length: 0 for a body-less POST, PUT, DELETE…
        handle.setopt(pycurl.POSTFIELDS, out.body or b"")
        if method != "POST":
            handle.setopt(pycurl.CUSTOMREQUEST, method)
    handle.setopt(pycurl.HEADERFUNCTION, answer.header)
    handle.setopt(pycurl.WRITEFUNCTION, answer.write)


def send(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    data: Any = None,
    json: Any = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 15.0,
    allow_private: bool | None = None,
) -> Response:
    """Make one request. Any HTTP status (3xx included) is returned as the response; connection
    errors, timeouts and malformed URLs raise OutboundError; refused addresses UnsafeDestination.

    `data`, `json` and `auth` are encoded as requests encoded them (`http_wire.outgoing`).
    """
    scheme, host, port, addresses = _checked_addresses(url, allow_private)
    try:
        out = http_wire.outgoing(
            url,
            _DEFAULT_HEADERS,
            http_wire.host_header(scheme, host, port),
            headers,
            data,
            json,
            auth,
        )
    except ValueError as exc:  # a JSON body that cannot be encoded
        raise OutboundError(f"The request failed: {exc}") from exc
    method = method.upper()
    started = time.monotonic()
    tried = addresses[:MAX_ADDRESSES_TRIED]
    for index, address in enumerate(tried):
        key = (scheme, str(address), port, host)
        handle = _handle_for(key)
        answer = _Answer()
        _prepare(handle, key, method, out, timeout, answer)
        try:
            handle.perform()
        except pycurl.error as exc:
            code = exc.args[0] if exc.args else None
            if code == pycurl.E_WRITE_ERROR and answer.cut:
                status = int(handle.getinfo(pycurl.RESPONSE_CODE))
                handle.close()  # the rest of the body is still on that connection
                break
            handle.close()
            message = exc.args[1] if len(exc.args) > 1 else str(exc)
            if code == pycurl.E_COULDNT_CONNECT and index < len(tried) - 1:
                # Nothing was sent when the connection could not even be opened, so the next
                # checked address (say IPv4 after an unrouted IPv6) may be tried safely.
                continue
            if code == pycurl.E_OPERATION_TIMEDOUT:
                raise OutboundError(f"No answer within {timeout:g} s.") from exc
            raise OutboundError(f"The request failed: {message}") from exc
        status = int(handle.getinfo(pycurl.RESPONSE_CODE))
        _keep(key, handle)
        break
    else:  # pragma: no cover - _resolve returns at least one address
        raise OutboundError("No address to connect to.")
    reason, answer_headers = answer.status_line_and_headers()
    content = b"".join(answer.body)[:MAX_RESPONSE_BYTES]
    return http_wire.response_from(
        status, reason, answer_headers, content, url, time.monotonic() - started
    )


def side_by_side(work: Callable[[], _T]) -> Future[_T]:
    """Run `work` (which makes its requests with `send`) on the shared pool of
    `SMSGATE_WEBHOOKS_CONCURRENCY` threads. The threads live as long as the process, so the
    connections each keeps stay warm across batches. `work` must not touch the database: a pool
    thread would open a connection of its own and keep it."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, int(settings.SMSGATE_WEBHOOKS_CONCURRENCY)),
                thread_name_prefix="smsgate-http",
            )
        pool = _pool
    return pool.submit(work)
