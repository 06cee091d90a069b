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

Requests made side by side (a batch of webhook deliveries) run on `side_by_side`, one
process-wide pool of threads: each thread keeps its own sessions, so a receiver's connections
stay open from one batch to the next, and each request keeps its own timeout, so a slow
receiver holds one thread, not the others.
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
from http.cookiejar import DefaultCookiePolicy
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

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
# Distinct (address, name) pairs whose connections one thread keeps open.
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


class _PinnedAdapter(HTTPAdapter):
    """Connects to an address checked beforehand instead of resolving the host again."""

    def __init__(self, address: IPAddress, hostname: str) -> None:
        self._address = str(address)
        self._hostname = hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params["host"] = self._address
        if host_params["scheme"] == "https":
            # The certificate and SNI are about the name, not the address we dial.
            pool_kwargs["server_hostname"] = self._hostname
            pool_kwargs["assert_hostname"] = self._hostname
        return host_params, pool_kwargs


def _host_header(scheme: str, host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


def _read_bounded(response: requests.Response, deadline: float) -> None:
    """Read at most MAX_RESPONSE_BYTES and stop at the deadline (a slow-drip receiver)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=16384):
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException as exc:
        raise OutboundError(f"Reading the response failed: {exc}") from exc
    finally:
        response.close()
    response._content = b"".join(chunks)[:MAX_RESPONSE_BYTES]


_SessionKey = tuple[str, str, str]


class _Sessions(threading.local):
    """This thread's sessions by (scheme, checked address, host name), least recent first,
    with when each was last used."""

    def __init__(self) -> None:
        self.by_key: OrderedDict[_SessionKey, tuple[requests.Session, float]] = OrderedDict()


_sessions = _Sessions()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_sessions() -> None:
    # A forked child (a Celery prefork worker) must not share its parent's sockets, and
    # inherits none of its threads: the pool starts afresh there.
    global _sessions, _pool, _pool_lock
    _sessions = _Sessions()
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_sessions)


def _new_session(scheme: str, address: IPAddress, host: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # proxies from the environment would bypass the check
    # One receiver's cookies must never travel with the next request (another endpoint, maybe
    # another tenant, on the same host).
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.mount(f"{scheme}://", _PinnedAdapter(address, host))
    return session


def _session(scheme: str, address: IPAddress, host: str) -> tuple[_SessionKey, requests.Session]:
    """A session pinned to this checked address, kept from an earlier request when fresh."""
    key = (scheme, str(address), host)
    kept = _sessions.by_key.pop(key, None)
    if kept is not None:
        session, last_used = kept
        if time.monotonic() - last_used < KEEPALIVE_IDLE:
            return key, session
        session.close()
    return key, _new_session(scheme, address, host)


def _keep(key: _SessionKey, session: requests.Session) -> None:
    kept = _sessions.by_key
    kept[key] = (session, time.monotonic())
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
) -> requests.Response:
    """Make one request. Any HTTP status (3xx included) is returned as the response; connection
    errors, timeouts and malformed URLs raise OutboundError; refused addresses UnsafeDestination.
    """
    scheme, host, port, addresses = _checked_addresses(url, allow_private)
    all_headers = {"User-Agent": USER_AGENT, "Host": _host_header(scheme, host, port)}
    all_headers.update(headers or {})
    deadline = time.monotonic() + timeout
    for index, address in enumerate(addresses[:MAX_ADDRESSES_TRIED]):
        key, session = _session(scheme, address, host)
        try:
            response = session.request(
                method,
                url,
                headers=all_headers,
                data=data,
                json=json,
                auth=auth,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as exc:
            session.close()
            raise OutboundError(f"No answer within {timeout:g} s.") from exc
        except requests.ConnectionError as exc:
            session.close()
            # Nothing was sent when the connection could not even be opened, so the next
            # checked address (say IPv4 after an unrouted IPv6) may be tried safely.
            last = index == min(len(addresses), MAX_ADDRESSES_TRIED) - 1
            if not last and _never_connected(exc):
                continue
            raise OutboundError(f"The request failed: {exc}") from exc
        except requests.RequestException as exc:
            session.close()
            raise OutboundError(f"The request failed: {exc}") from exc
        # A body read to its end hands the connection back to the session's pool; one cut
        # short (too big, too slow) closes it.
        try:
            _read_bounded(response, deadline)
        except BaseException:
            session.close()
            raise
        _keep(key, session)
        return response
    raise OutboundError("No address to connect to.")  # unreachable: _resolve returns some


def side_by_side(work: Callable[[], _T]) -> Future[_T]:
    """Run `work` (which makes its requests with `send`) on the shared pool of
    `SMSGATE_WEBHOOKS_CONCURRENCY` threads. The threads live as long as the process, so the
    sessions each keeps stay warm across batches. `work` must not touch the database: a pool
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


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)
