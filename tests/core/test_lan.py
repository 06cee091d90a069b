"""`./start --lan`: finding the machine's LAN address without any traffic leaving it, and the
environment that makes smsgate answer there (docs/operations.md)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

from smsgate import lan


def _finder(routes: dict[str, str | None], names: list[str]) -> str | None:
    return lan.find_lan_address(
        routed_source=lambda probe: routes.get(probe), hostname_addresses=lambda: names
    )


def test_the_address_is_the_source_of_the_route_to_a_private_network() -> None:
    assert _finder({"192.168.254.254": "192.168.1.20"}, ["10.9.9.9"]) == "192.168.1.20"


def test_without_such_a_route_the_next_probe_and_then_the_hostname_are_asked() -> None:
    assert _finder({"10.254.254.254": "10.0.0.7"}, []) == "10.0.0.7"
    assert _finder({}, ["127.0.1.1", "172.16.5.4"]) == "172.16.5.4"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.1.1", "0.0.0.0", "169.254.3.3", "::1"])
def test_loopback_and_unusable_answers_are_never_returned(address: str) -> None:
    routes: dict[str, str | None] = dict.fromkeys(lan.PROBES, address)
    assert _finder(routes, [address]) is None


def test_every_probe_is_a_private_address() -> None:
    for probe in lan.PROBES:
        ip = ipaddress.ip_address(probe)
        assert ip.is_private and not ip.is_global


class _RecordingSocket:
    """Stands in for socket.socket: records what would be opened and connected."""

    opened: list[tuple[int, int]] = []
    connected: list[tuple[str, int]] = []

    def __init__(self, family: int, kind: int) -> None:
        self.opened.append((family, kind))

    def __enter__(self) -> _RecordingSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def connect(self, target: tuple[str, int]) -> None:
        self.connected.append(target)
        if target[0] != "172.31.254.254":
            raise OSError("Network is unreachable")

    def getsockname(self) -> tuple[str, int]:
        return ("172.20.0.5", 40000)

    def sendto(self, *args: Any) -> None:  # pragma: no cover - failing here is the point
        raise AssertionError("the address finder must send nothing")

    send = sendto


def test_the_finder_only_asks_the_kernel_for_udp_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    _RecordingSocket.opened, _RecordingSocket.connected = [], []
    monkeypatch.setattr(lan.socket, "socket", _RecordingSocket)

    assert lan.find_lan_address(hostname_addresses=lambda: []) == "172.20.0.5"

    assert {kind for _, kind in _RecordingSocket.opened} == {socket.SOCK_DGRAM}
    assert [host for host, _ in _RecordingSocket.connected] == list(lan.PROBES)


def test_on_this_machine_the_finder_returns_a_usable_address_or_none() -> None:
    found = lan.find_lan_address()
    assert found is None or (lan.is_usable(found) and not found.startswith("127."))


# --- the environment -------------------------------------------------------------------------


def _env(host: str = "0.0.0.0", **kwargs: Any) -> dict[str, str]:
    return lan.lan_environment(
        host=host,
        port=kwargs.pop("port", "8000"),
        environ=kwargs.pop("environ", {}),
        dotenv=kwargs.pop("dotenv", {}),
        find_address=kwargs.pop("find_address", lambda: "192.168.1.20"),
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]"])
def test_a_loopback_host_changes_nothing(host: str) -> None:
    assert _env(host, find_address=lambda: pytest.fail("no lookup for loopback")) == {}


def test_all_interfaces_add_the_lan_address_to_hosts_and_make_it_the_public_url() -> None:
    assert _env(port="9000") == {
        "ALLOWED_HOSTS": "127.0.0.1,localhost,[::1],192.168.1.20",
        "SMSGATE_PUBLIC_URL": "http://192.168.1.20:9000",
        "SMSGATE_QUICKSTART_LAN_URL": "http://192.168.1.20:9000",
    }


def test_a_named_address_is_used_as_it_is() -> None:
    env = _env("10.1.2.3", find_address=lambda: pytest.fail("the user named it"))
    assert env["SMSGATE_PUBLIC_URL"] == "http://10.1.2.3:8000"
    assert env["ALLOWED_HOSTS"].endswith(",10.1.2.3")


def test_the_users_hosts_are_kept_and_extended() -> None:
    from_environ = _env(environ={"ALLOWED_HOSTS": "sms.example.org"})
    from_dotenv = _env(dotenv={"ALLOWED_HOSTS": "a.example.org,192.168.1.20"})
    anything = _env(environ={"ALLOWED_HOSTS": "*"})

    assert from_environ["ALLOWED_HOSTS"] == "sms.example.org,192.168.1.20"
    assert from_dotenv["ALLOWED_HOSTS"] == "a.example.org,192.168.1.20"
    assert anything["ALLOWED_HOSTS"] == "*"


@pytest.mark.parametrize("where", ["environ", "dotenv"])
def test_a_public_url_the_user_set_is_kept(where: str) -> None:
    env = _env(**{where: {"SMSGATE_PUBLIC_URL": "https://sms.example.org"}})
    assert "SMSGATE_PUBLIC_URL" not in env
    assert env["SMSGATE_QUICKSTART_LAN_URL"] == "http://192.168.1.20:8000"


def test_no_lan_address_is_a_clear_error() -> None:
    with pytest.raises(LookupError, match=r"HOST=192\.168\.1\.20 \./start"):
        _env(find_address=lambda: None)


def test_dotenv_values_are_read_as_settings_reads_them(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nALLOWED_HOSTS='a.example.org,b.example.org'\n"
        'export SMSGATE_PUBLIC_URL="https://sms.example.org"\nDEBUG = true\nnonsense\n'
    )
    assert lan.read_dotenv(dotenv) == {
        "ALLOWED_HOSTS": "a.example.org,b.example.org",
        "SMSGATE_PUBLIC_URL": "https://sms.example.org",
        "DEBUG": "true",
    }
    assert lan.read_dotenv(tmp_path / "missing") == {}


def test_main_prints_shell_exports_or_fails_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(lan, "find_lan_address", lambda: "192.168.1.20")
    monkeypatch.setenv("ALLOWED_HOSTS", "it's.example.org")
    monkeypatch.delenv("SMSGATE_PUBLIC_URL", raising=False)

    assert lan.main(["--host", "0.0.0.0", "--port", "8000", "--dotenv", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "export ALLOWED_HOSTS='it'\"'\"'s.example.org,192.168.1.20'\n" in out
    assert "export SMSGATE_PUBLIC_URL=http://192.168.1.20:8000\n" in out

    monkeypatch.setattr(lan, "find_lan_address", lambda: None)
    assert lan.main(["--host", "0.0.0.0", "--port", "8000"]) == 1
    assert "could not find this machine's address" in capsys.readouterr().err
