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
  variables (a proxy would make the address check meaningless), sends a User-Agent, and bounds
  both the time (per socket operation and in total while reading) and the size of the body read;
- keeps connections open for the next request to the same checked address and name (a worker
  fanning events out to one receiver would otherwise open a TCP/TLS connection per delivery).
  The host is still resolved and checked on every request, and a kept connection is reused
  only when that fresh check picks the same address. Pools are per thread (and dropped in a
  forked child), never keep cookies, and a connection idle for a second is not reused.

Requests go out through urllib3 connection pools driven directly (requests' session layer was
most of the CPU of a webhook delivery); `smsgate.http_wire` shapes them as requests did and
hands the answer back as a `requests.Response`.

Requests made side by side (a batch of webhook deliveries) run on `side_by_side`, one
process-wide pool of threads: each thread keeps its own connection pools, so a receiver's
connections stay open from one batch to the next, and each request keeps its own timeout, so a
slow receiver holds one thread, not the others.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from requests import Response, certs
from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Retry
from urllib3.util.ssl_ import create_urllib3_context

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
# Neither retries nor redirects: a 3xx comes back as the answer, a failure as an error.
_NO_RETRIES = Retry(total=False, redirect=False)


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


def _read_bounded(raw: BaseHTTPResponse, deadline: float) -> bytes:
    """Read at most MAX_RESPONSE_BYTES and stop at the deadline (a slow-drip receiver).

    A body read to its end hands the connection back to the pool; one cut short (too big,
    too slow, broken) closes it."""
    chunks: list[bytes] = []
    size = 0
    complete = False
    try:
        for chunk in raw.stream(16384, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                break
        else:
            complete = True
    except (HTTPError, OSError) as exc:
        raise OutboundError(f"Reading the response failed: {exc}") from exc
    finally:
        if not complete:
            raw.close()
        raw.release_conn()
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One context for every TLS pool: loading the CA bundle costs milliseconds. The
    certificates are those requests trusts (certifi's bundle, not the environment's)."""
    context = create_urllib3_context()
    # urllib3 checks the certificate against the name itself (assert_hostname), since the
    # address we dial is not the name.
    context.check_hostname = False
    context.load_verify_locations(certs.where())
    return context


# (scheme, checked address, port, host name)
_PoolKey = tuple[str, str, int, str]


class _Pools(threading.local):
    """This thread's connection pools by _PoolKey, least recent first, with when each was last
    used."""

    def __init__(self) -> None:
        self.by_key: OrderedDict[_PoolKey, tuple[HTTPConnectionPool, float]] = OrderedDict()


_pools = _Pools()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pools() -> None:
    # A forked child (a Celery prefork worker) must not share its parent's sockets, and
    # inherits none of its threads: the pool starts afresh there.
    global _pools, _pool, _pool_lock
    _pools = _Pools()
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools)


def _new_pool(key: _PoolKey) -> HTTPConnectionPool:
    """A pool that dials the checked address, never the name. urllib3 pools keep no cookies,
    read no proxy settings from the environment and, here, neither retry nor redirect."""
    scheme, address, port, host = key
    if scheme == "https":
        return HTTPSConnectionPool(
            address,
            port,
            maxsize=1,  # one thread makes one request at a time
            retries=_NO_RETRIES,
            # The certificate and SNI are about the name, not the address we dial.
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ssl_context=_tls_context(),
        )
    return HTTPConnectionPool(address, port, maxsize=1, retries=_NO_RETRIES)


def _pool_for(key: _PoolKey) -> HTTPConnectionPool:
    """A pool for this checked address and name, kept from an earlier request when fresh."""
    kept = _pools.by_key.pop(key, None)
    if kept is not None:
        pool, last_used = kept
        if time.monotonic() - last_used < KEEPALIVE_IDLE:
            return pool
        pool.close()
    return _new_pool(key)


def _keep(key: _PoolKey, pool: HTTPConnectionPool) -> None:
    kept = _pools.by_key
    kept[key] = (pool, time.monotonic())
    while len(kept) > MAX_KEPT_SESSIONS:
        _, (oldest, _) = kept.popitem(last=False)
        oldest.close()


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
        target, body, all_headers = http_wire.outgoing(
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
    started = time.monotonic()
    deadline = started + timeout
    tried = addresses[:MAX_ADDRESSES_TRIED]
    for index, address in enumerate(tried):
        key = (scheme, str(address), port, host)
        pool = _pool_for(key)
        try:
            raw = pool.urlopen(
                method.upper(),
                target,
                body=body,
                headers=all_headers,
                retries=_NO_RETRIES,
                redirect=False,
                timeout=timeout,
                preload_content=False,
                decode_content=True,
            )
        except NewConnectionError as exc:
            pool.close()
            # Nothing was sent when the connection could not even be opened, so the next
            # checked address (say IPv4 after an unrouted IPv6) may be tried safely.
            if index < len(tried) - 1:
                continue
            raise OutboundError(f"The request failed: {exc}") from exc
        except (Urllib3Timeout, TimeoutError) as exc:
            pool.close()
            raise OutboundError(f"No answer within {timeout:g} s.") from exc
        except (HTTPError, OSError, ValueError) as exc:
            pool.close()
            raise OutboundError(f"The request failed: {exc}") from exc
        try:
            content = _read_bounded(raw, deadline)
        except BaseException:
            pool.close()
            raise
        _keep(key, pool)
        return http_wire.response_from(raw, content, url, time.monotonic() - started)
    raise OutboundError("No address to connect to.")  # unreachable: _resolve returns some


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
