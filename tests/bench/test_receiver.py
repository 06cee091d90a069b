"""The bench's webhook receiver (bench/receiver.py) as bench/run.py and bench/fanout.py use it:
counts per path, the latency marker (first arrival counts), reset, kept-alive and pipelined
requests, chunked bodies, and a slow path that holds up nothing but its own connection."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.receiver import SLOW_SECONDS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def conn(port: int) -> Iterator[http.client.HTTPConnection]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/reset", body=b"")
    assert c.getresponse().read() == b"{}"
    yield c
    c.close()


def post(c: http.client.HTTPConnection, path: str, body: bytes) -> http.client.HTTPResponse:
    c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = c.getresponse()
    response.read()
    return response


def stats(c: http.client.HTTPConnection) -> tuple[bytes, dict[str, Any]]:
    c.request("GET", "/stats")
    raw = c.getresponse().read()
    return raw, json.loads(raw)


def test_posts_are_counted_by_path_and_the_first_arrival_of_a_marker_is_its_latency(
    conn: http.client.HTTPConnection,
) -> None:
    sent_at = time.time() - 0.25
    for _ in range(3):  # one kept-alive connection throughout
        response = post(conn, "/hook/a", b'{"pad": "%s"}' % (b"x" * 1000))
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
    post(conn, "/hook/b?x=1", b'{"m": "lat|7|%.6f bench"}' % sent_at)
    post(conn, "/hook/b?x=1", b'{"m": "lat|7|%.6f bench"}' % (sent_at - 100))  # a retry
    post(conn, "/hook/b?x=1", b'{"m": "lat|8|%.6f bench"}' % sent_at)
    conn.request("GET", "/hook/a")  # GETs are answered, not counted
    assert conn.getresponse().read() == b"{}"

    raw, found = stats(conn)

    assert found["counts"] == {"/hook/a": 3, "/hook/b?x=1": 3}
    assert set(found["latency"]) == {"/hook/b?x=1"}
    latency = found["latency"]["/hook/b?x=1"]
    assert set(latency) == {"7", "8"}
    assert 0.25 <= latency["7"] < 5
    assert found["fast_last_at"] == found["last_at"] >= sent_at
    # The body is json.dumps of those four keys, as it always was.
    assert raw == json.dumps(found).encode()


def test_reset_forgets_counts_and_latency(conn: http.client.HTTPConnection) -> None:
    post(conn, "/hook/a", b"lat|1|%.6f" % time.time())

    post(conn, "/reset", b"")

    _, found = stats(conn)
    assert found["counts"] == {} and found["latency"] == {}


def test_pipelined_and_chunked_requests_are_each_counted_and_answered_in_order(
    port: int, conn: http.client.HTTPConnection
) -> None:
    chunked = b"lat|5|%.6f" % time.time()
    requests = (
        b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        b"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n"
        b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (len(chunked), chunked)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(requests)
        answer = b""
        while chunk := s.recv(65536):  # the server closes after the third answer
            answer += chunk

    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    last = json.loads(answer.rsplit(b"\r\n\r\n", 1)[1])
    assert last["counts"] == {"/one": 1, "/two": 1}
    assert set(last["latency"]["/two"]) == {"5"}


def test_a_slow_path_answers_late_without_holding_up_other_connections(
    port: int, conn: http.client.HTTPConnection
) -> None:
    slow_took: list[float] = []

    def slow() -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        start = time.monotonic()
        assert post(c, "/slow/hook", b"{}").status == 200
        slow_took.append(time.monotonic() - start)
        c.close()

    threads = [threading.Thread(target=slow) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while stats(conn)[1]["counts"].get("/slow/hook", 0) < 3:  # counted on arrival
        assert time.monotonic() < deadline
        time.sleep(0.01)
    start, fast_from = time.monotonic(), time.time()
    for _ in range(5):
        post(conn, "/hook/fast", b"{}")
    fast_took = time.monotonic() - start
    for t in threads:
        t.join()

    assert fast_took < SLOW_SECONDS / 2
    assert len(slow_took) == 3 and all(took >= SLOW_SECONDS for took in slow_took)
    _, found = stats(conn)
    assert found["counts"] == {"/slow/hook": 3, "/hook/fast": 5}
    assert found["fast_last_at"] == found["last_at"] >= fast_from


def test_an_answer_pipelined_behind_a_slow_one_waits_for_it(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        start = time.monotonic()
        s.sendall(
            b"POST /slow/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        first = s.recv(65536)
        took = time.monotonic() - start
        answer = first
        while chunk := s.recv(65536):
            answer += chunk

    assert took >= SLOW_SECONDS
    first_answer, second_answer = answer.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert first_answer.endswith(b"\r\n\r\n{}")
    assert b'"counts"' in second_answer
