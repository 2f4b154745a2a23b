"""The HTTP edge against a real ``python -m api serve`` process on loopback: slow or silent
connections are closed within the configured timeouts, oversized headers get 431, and an
admin document past its limit gets 413."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.harness import Api

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
MIN_RATE = 1024
MAX_HEADER_BYTES = 8192
ADMIN_BODY_BYTES = 4096
# Loop scheduling and a loaded 2-core machine: the close may come a little late.
SLACK_S = 1.5


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    server = Api(
        tmp_path_factory.mktemp("edge"),
        "edge",
        "127.0.0.1:1",  # no Triton: these requests never reach a model
        API_LOG_LEVEL="warning",
        API_HTTP__HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        API_HTTP__BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        API_HTTP__BODY_MIN_RATE=str(MIN_RATE),
        API_HTTP__MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        API_HTTP__MAX_ADMIN_BODY_BYTES=str(ADMIN_BODY_BYTES),
        API_BATCHES__WORKER_IN_PROCESS="false",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def connect(api: Api) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout_s: float = 10) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer: a reset, after any answer
    return data


def trickle(sock: socket.socket, data: bytes, every_s: float, for_s: float) -> float:
    """Send ``data`` a byte at a time until the server closes; seconds until it did."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        time.sleep(every_s)
        if time.monotonic() - started > for_s:
            break
    return time.monotonic() - started


def status_and_error(reply: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)["error"]


def test_a_connection_that_never_sends_is_closed(api: Api) -> None:
    with connect(api) as sock:
        started = time.monotonic()
        reply = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert HEADER_TIMEOUT_S - 0.2 < elapsed < HEADER_TIMEOUT_S + SLACK_S
    assert status_and_error(reply)[0] == 408


def test_headers_sent_slowly_are_cut_off(api: Api) -> None:
    head = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with connect(api) as sock:
        started = time.monotonic()
        trickle(sock, head, every_s=0.05, for_s=HEADER_TIMEOUT_S + SLACK_S)
        reply = read_until_closed(sock)
        elapsed = time.monotonic() - started
    status, error = status_and_error(reply)
    assert (status, error["code"]) == (408, "request_timeout")
    assert elapsed < HEADER_TIMEOUT_S + SLACK_S


def post_head(api: Api, length: int, authorized: bool = True) -> bytes:
    auth = b"Authorization: " + api.headers["Authorization"].encode() + b"\r\n"
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        + (auth if authorized else b"")
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


def test_a_body_that_never_comes_is_cut_off(api: Api) -> None:
    with connect(api) as sock:
        sock.sendall(post_head(api, 100) + b"{")
        started = time.monotonic()
        reply = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert BODY_TIMEOUT_S - 0.2 < elapsed < BODY_TIMEOUT_S + SLACK_S
    assert status_and_error(reply)[0] == 408


def test_an_answered_request_whose_body_never_comes_is_closed_after_its_answer(
    api: Api,
) -> None:
    with connect(api) as sock:
        sock.sendall(post_head(api, 100, authorized=False) + b"{")
        started = time.monotonic()
        reply = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert status_and_error(reply)[0] == 401  # one answer: no 408 after it
    assert elapsed < BODY_TIMEOUT_S + SLACK_S


def test_a_body_below_the_minimum_rate_is_cut_off(api: Api) -> None:
    head = post_head(api, 5000)
    with connect(api) as sock:
        sock.sendall(head)
        # 20 bytes per 0.05 s = 400 B/s, below the 1,024 B/s the deadline grows by.
        elapsed = trickle(sock, b"x" * 5000, every_s=0.0025, for_s=BODY_TIMEOUT_S + 3 * SLACK_S)
        reply = read_until_closed(sock)
    assert status_and_error(reply)[0] == 408
    assert elapsed < BODY_TIMEOUT_S + 3 * SLACK_S


def test_a_steady_body_and_keep_alive_requests_are_served(api: Api) -> None:
    with httpx.Client(base_url=api.url, headers=api.headers, timeout=30) as client:
        for _ in range(3):
            assert client.get("/v1/models").status_code == 200
        # 200 KB sent at once: far more than body_timeout_s x min_rate, and fine.
        payload = {"model": "tiny-chat", "messages": [{"role": "user", "content": "x" * 200_000}]}
        response = client.post("/v1/moderations", json={"input": "x" * 200_000})
        assert response.status_code in {200, 400}, response.text
        assert client.post("/v1/chat/completions", json=payload).status_code != 408


def test_oversized_headers_get_431(api: Api) -> None:
    big = {"X-Big": "a" * (MAX_HEADER_BYTES + 100)}
    response = httpx.get(f"{api.url}/v1/models", headers={**api.headers, **big}, timeout=10)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_header_fields_too_large"
    many = {f"X-H{i}": "a" * 100 for i in range(MAX_HEADER_BYTES // 100)}
    assert httpx.get(f"{api.url}/v1/models", headers=many, timeout=10).status_code == 431


def test_headers_that_never_end_are_refused_before_they_are_buffered(api: Api) -> None:
    with connect(api) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 50 * MAX_HEADER_BYTES:
                sock.sendall(b"a" * 1024)
                sent += 1024
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_until_closed(sock)
    assert reply == b"" or status_and_error(reply)[0] == 431
    assert sent < 50 * MAX_HEADER_BYTES  # the server closed the connection early


def test_a_tier_document_over_the_admin_limit_gets_413(api: Api) -> None:
    url = f"{api.url}/v1/admin/tiers/huge"
    padding = {f"m{i}": {"requests_per_minute": 1} for i in range(ADMIN_BODY_BYTES // 20)}
    response = httpx.put(url, json={"models": padding}, headers=api.headers, timeout=30)
    assert response.status_code == 413, response.text
    # A declared 64 MB document is refused before any of it is sent.
    with connect(api) as sock:
        auth = api.headers["Authorization"].encode()
        sock.sendall(
            b"PUT /v1/admin/tiers/huge HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 67108864\r\n\r\n"
        )
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    small = httpx.put(url, json={"requests_per_minute": 5}, headers=api.headers, timeout=30)
    assert small.status_code == 200, small.text
