"""The loopback time-to-first-token breakdown: frame parsing, request matching, capture."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from benchmarks import report, wire
from benchmarks.wire import Packet

API, GRPC, CLIENT, API_GRPC_CLIENT, DIRECT_CLIENT = 8000, 8001, 50000, 50001, 50002


def frame(src_port: int, dst_port: int, payload: bytes) -> bytes:
    """An Ethernet frame of ``lo`` carrying one IPv4 TCP segment."""
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, 0, 0, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    return b"\0" * 12 + b"\x08\x00" + ip + tcp + payload


def test_a_frame_gives_its_ports_size_and_head_and_bare_acks_are_dropped() -> None:
    packet = wire.parse_frame(frame(CLIENT, API, b"POST /v1/chat/completions"), at=1.5)
    assert packet == Packet(1.5, CLIENT, API, 25, b"POST /v1/chat/completions")
    assert wire.parse_frame(frame(CLIENT, API, b""), at=1.5) is None
    udp = bytearray(frame(CLIENT, API, b"x"))
    udp[14 + 9] = socket.IPPROTO_UDP
    assert wire.parse_frame(bytes(udp), at=1.5) is None


def api_request(start: float, post: float, out: float, answer: float, chunk: float) -> list[Packet]:
    """One API request's packets, with the small frames that must not be taken for the
    request or the response (gRPC window updates, the HTTP headers, the role-less body)."""
    return [
        Packet(start, CLIENT, API, 220, b"POST /v1/chat/completions HTTP/1.1"),
        Packet(start + 0.00001, CLIENT, API, 330, b'{"model":"tiny-chat"}'),
        Packet(start + post, API_GRPC_CLIENT, GRPC, 26, b"\0\0\4\x08"),  # window update
        Packet(start + out, API_GRPC_CLIENT, GRPC, 750, b"\0\0\4\x08request"),
        Packet(start + out + 0.0004, GRPC, API_GRPC_CLIENT, 26, b"\0\0\4\x08"),
        Packet(start + answer, GRPC, API_GRPC_CLIENT, 275, b"\0\1\n\0response"),
        Packet(start + answer + 0.0002, API, CLIENT, 477, b"HTTP/1.1 200 OK\r\n"),
        Packet(start + chunk, API, CLIENT, 611, b'25c\r\ndata: {"id":"chatcmpl-1"'),
        Packet(start + chunk + 0.002, GRPC, API_GRPC_CLIENT, 273, b"\0\1\x08next"),
        Packet(start + chunk + 0.0022, API, CLIENT, 306, b"12b\r\ndata: {}"),
    ]


def direct_request(start: float, answer: float) -> list[Packet]:
    return [
        Packet(start, DIRECT_CLIENT, GRPC, 640, b"\0\0\4request"),
        Packet(start + 0.0003, GRPC, DIRECT_CLIENT, 26, b"\0\0\4\x08"),
        Packet(start + answer, GRPC, DIRECT_CLIENT, 275, b"\0\1\nresponse"),
        Packet(start + answer + 0.002, GRPC, DIRECT_CLIENT, 273, b"\0\1\x08next"),
    ]


def test_each_api_request_splits_into_the_api_before_triton_and_the_api_after() -> None:
    packets = api_request(10.0, 0.0005, 0.001, 0.011, 0.0115)
    packets += api_request(11.0, 0.0005, 0.002, 0.014, 0.0143)
    timelines = wire.api_timelines(packets, API, GRPC)
    assert [(t.before_grpc, t.triton, t.after_first_response) for t in timelines] == [
        pytest.approx((0.001, 0.010, 0.0005)),
        pytest.approx((0.002, 0.012, 0.0003)),
    ]


def test_a_request_cut_off_by_the_end_of_the_capture_is_left_out() -> None:
    packets = api_request(10.0, 0.0005, 0.001, 0.011, 0.0115)
    packets += api_request(11.0, 0.0005, 0.002, 0.014, 0.0143)[:5]  # no response yet
    assert len(wire.api_timelines(packets, API, GRPC)) == 1


def test_two_captures_joined_count_each_complete_request_once() -> None:
    """The breakdown runs each path twice (forward and reverse order) and joins the captures:
    a request the first capture cut off must not borrow the second capture's packets."""
    first = api_request(10.0, 0.0005, 0.001, 0.011, 0.0115)
    first += api_request(11.0, 0.0005, 0.002, 0.014, 0.0143)[:5]  # cut off
    second = api_request(50.0, 0.0005, 0.003, 0.016, 0.0161)
    timelines = wire.api_timelines(first + second, API, GRPC)
    assert [(t.before_grpc, t.triton) for t in timelines] == [
        pytest.approx((0.001, 0.010)),
        pytest.approx((0.003, 0.013)),
    ]


def test_each_direct_request_is_timed_to_its_first_response_only() -> None:
    packets = direct_request(1.0, 0.010) + direct_request(2.0, 0.012)
    assert wire.direct_first_responses(packets, GRPC) == [
        pytest.approx(0.010),
        pytest.approx(0.012),
    ]


def test_the_summaries_are_medians_in_ms_and_render_as_a_table() -> None:
    chat = [
        packet
        for start, out in ((10.0, 0.001), (11.0, 0.002), (12.0, 0.003))
        for packet in api_request(start, 0.0005, out, out + 0.011, out + 0.0115)
    ]
    completions = [
        p for start in (20.0, 21.0) for p in api_request(start, 0.0005, 0.001, 0.010, 0.0104)
    ]
    direct = [p for start in (1.0, 2.0, 3.0) for p in direct_request(start, 0.0099)]
    figures = {
        "direct": wire.direct_summary(direct, GRPC),
        "chat": wire.api_summary(chat, API, GRPC),
        "completions": wire.api_summary(completions, API, GRPC),
        "genai_perf_ttft_p50_ms": {"direct": 10.1, "chat": 14.0},
    }
    assert figures["direct"] == {"requests": 3, "first_response_ms": 9.9}
    assert figures["chat"] == {
        "requests": 3,
        "first_chunk_ms": 13.5,
        "before_grpc_ms": 2.0,
        "triton_ms": 11.0,
        "after_first_response_ms": 0.5,
    }
    assert figures["completions"]["triton_ms"] == 9.0
    table = report.breakdown_table(figures)
    assert "| POST in -> gRPC request out (the API) | 2.00 | 1.00 |" in table
    assert "| genai-perf's TTFT p50 | 14.00 | n/a |" in table
    assert "**9.90 ms**" in table
    assert "sent bare" not in table  # runs before the bare-prompt direct run had none
    assert "in reverse" not in table  # runs before the breakdown ran in both orders
    assert "once in reverse" in report.breakdown_table({**figures, "order": "forward and reverse"})
    bare = [p for start in (4.0, 5.0) for p in direct_request(start, 0.0091)]
    figures["direct_plain"] = wire.direct_summary(bare, GRPC)
    figures["genai_perf_ttft_p50_ms"]["direct_plain"] = 9.5
    assert "chat template's control tokens: 9.10 ms (genai-perf: 9.50 ms)" in (
        report.breakdown_table(figures)
    )
    assert "floor" not in report.breakdown_table(figures)  # runs before the floor proxy
    floor = [p for start in (30.0, 31.0) for p in api_request(start, 0.0001, 0.0002, 0.011, 0.0112)]
    figures["floor"] = wire.api_summary(floor, API, GRPC)
    figures["genai_perf_ttft_p50_ms"]["floor"] = 12.5
    with_floor = report.breakdown_table(figures)
    assert "| POST in -> gRPC request out (the API) | 2.00 | 1.00 | 0.20 |" in with_floor
    assert "| genai-perf's TTFT p50 | 14.00 | n/a | 12.50 |" in with_floor
    assert "benchmarks.floor_proxy" in with_floor
    assert wire.api_summary(direct, API, GRPC) == {
        "error": "no complete API request in the captured packets"
    }
    figures["completions"] = wire.api_summary([], API, GRPC)
    assert report.breakdown_table(figures).startswith("Not measured: no complete API request")


def test_ports_come_from_urls_and_grpc_addresses() -> None:
    assert wire.port_of("http://127.0.0.1:8080") == 8080
    assert wire.port_of("localhost:8001") == 8001


def test_the_capture_sees_a_loopback_segment_with_its_kernel_time_stamp() -> None:
    try:
        capture = wire.LoopbackCapture()
    except wire.CaptureUnavailable as exc:
        pytest.skip(f"needs a raw packet socket (root or CAP_NET_RAW): {exc}")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    with capture.running() as packets:
        before = time.time()
        with socket.create_connection(("127.0.0.1", port)) as client:
            peer, _ = server.accept()
            client.sendall(b"POST /probe")
            assert peer.recv(64) == b"POST /probe"
            peer.close()
        after = time.time()
        deadline = time.monotonic() + 2
        while not any(p.dst_port == port for p in packets) and time.monotonic() < deadline:
            time.sleep(0.01)
    server.close()
    seen = [p for p in packets if p.dst_port == port]
    assert seen and seen[0].head == b"POST /probe" and seen[0].size == 11
    assert before <= seen[0].at <= after
