"""The quick start on the local network (`./start --lan`, or `HOST=0.0.0.0 ./start`): which
address a phone on the same network reaches this machine at, and the environment that lets
smsgate answer there (docs/operations.md#a-phone-on-your-network-start---lan).

Run by scripts/quickstart-env.sh as `python -m smsgate.lan --host H --port P --dotenv F`: it
prints `export NAME=value` lines for the shell to eval, or says on stderr why not and exits 1.
No Django here: it runs before the settings can be read, and its output decides some of them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

# Private addresses that nothing answers at. connect() on a UDP socket only asks the kernel
# which route (and so which source address) it would use: no packet leaves the machine, and
# no address outside the private ranges is ever involved. 192.168 first: if a VPN routes all
# of 10/8, the probe to 192.168 still goes through the LAN's default route.
PROBES = ("192.168.254.254", "10.254.254.254", "172.31.254.254")
DEFAULT_ALLOWED_HOSTS = "127.0.0.1,localhost,[::1]"
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_usable(address: str) -> bool:
    """An IPv4 address another machine on the network can reach: not loopback (127.x, which
    Debian also gives the hostname as 127.0.1.1), not 0.0.0.0, not link-local 169.254.x."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return (
        ip.version == 4
        and not ip.is_loopback
        and not ip.is_unspecified
        and not ip.is_link_local
        and not ip.is_multicast
    )


def _routed_source(probe: str) -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
    except OSError:  # no route to that network (no LAN at all, or only loopback)
        return None


def _hostname_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def find_lan_address(
    *,
    routed_source: Callable[[str], str | None] = _routed_source,
    hostname_addresses: Callable[[], list[str]] = _hostname_addresses,
) -> str | None:
    """This machine's address on the local network, or None when it has none.

    The source address the kernel would use towards a private network is the address of the
    interface that faces the LAN; when there is no such route, the addresses the hostname
    resolves to are the next best guess. Loopback answers are never returned.
    """
    for probe in PROBES:
        address = routed_source(probe)
        if address and is_usable(address):
            return address
    return next((a for a in hostname_addresses() if is_usable(a)), None)


def read_dotenv(path: Path) -> dict[str, str]:
    """`NAME=value` lines of a .env file, as settings.py reads them (enough to tell whether the
    user set a variable there, and to what)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def lan_environment(
    *,
    host: str,
    port: str,
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    find_address: Callable[[], str | None] | None = None,
) -> dict[str, str]:
    """What the quick start exports to be reachable at `host` (all interfaces or one address).

    - ALLOWED_HOSTS gains the LAN address (Django answers 400 to any other Host header), on
      top of what the user set in the environment or .env, or of the default;
    - SMSGATE_PUBLIC_URL becomes `http://<address>:<port>` unless the user set one: it is the
      server the pairing card and the QR codes send phones to;
    - SMSGATE_QUICKSTART_LAN_URL is what the banner prints (and draws as a QR code).

    CSRF_TRUSTED_ORIGINS needs nothing: over plain HTTP Django accepts a form whose Origin is
    the Host it was served from, which is the case for the dashboard opened at the LAN URL.
    An empty dict means a loopback host: nothing to change.
    """
    if is_loopback(host):
        return {}
    try:
        unspecified = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        unspecified = False
    address = (find_address or find_lan_address)() if unspecified else host.strip("[]")
    if not address:
        raise LookupError(
            "could not find this machine's address on the local network; "
            "name it yourself, e.g. HOST=192.168.1.20 ./start"
        )
    url = f"http://{_url_host(address)}:{port}"
    allowed = environ.get("ALLOWED_HOSTS") or dotenv.get("ALLOWED_HOSTS") or DEFAULT_ALLOWED_HOSTS
    hosts = [h.strip() for h in allowed.split(",") if h.strip()]
    if "*" not in hosts and _url_host(address) not in hosts:
        hosts.append(_url_host(address))
    exports = {"ALLOWED_HOSTS": ",".join(hosts), "SMSGATE_QUICKSTART_LAN_URL": url}
    if not (environ.get("SMSGATE_PUBLIC_URL") or dotenv.get("SMSGATE_PUBLIC_URL")):
        exports["SMSGATE_PUBLIC_URL"] = url
    return exports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smsgate.lan", description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True)
    parser.add_argument("--dotenv", type=Path, default=Path(".env"))
    args = parser.parse_args(argv)
    try:
        exports = lan_environment(
            host=args.host, port=args.port, environ=os.environ, dotenv=read_dotenv(args.dotenv)
        )
    except LookupError as exc:
        print(f"./start: {exc}", file=sys.stderr)
        return 1
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
