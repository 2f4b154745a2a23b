"""Where the API path's time to first token goes, read off the loopback interface.

genai-perf sees only the client's side. At concurrency 1 the packets on ``lo`` (with the
kernel's receive time stamps) split each API request into: the API before its gRPC request
leaves (HTTP parse, middleware, validation, translation), Triton (the gRPC request to the first
response), and the API after it (the first SSE chunk out). The direct path gets
the same clock: its gRPC request to its first response. The probe needs a raw packet socket
(Linux, root or CAP_NET_RAW); without one the run goes on without it.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

ETH_P_IP = 0x0800
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; not exported by the socket module
# A gRPC request of the ensemble is several hundred bytes and a response with text about 270;
# window updates, pings and settings frames are under 40.
MIN_GRPC_REQUEST_BYTES = 200
MIN_GRPC_RESPONSE_BYTES = 100


class CaptureUnavailable(RuntimeError):
    """No raw packet socket here (not Linux, or neither root nor CAP_NET_RAW)."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One TCP segment with a payload, as the loopback interface carried it."""

    at: float  # seconds, kernel receive time stamp
    src_port: int
    dst_port: int
    size: int
    head: bytes  # the first bytes of the payload


def parse_frame(frame: bytes, at: float) -> Packet | None:
    """The TCP segment in an Ethernet frame of ``lo``; None for anything without a payload."""
    ip = frame[14:]
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP:
        return None
    ip_header = (ip[0] & 0x0F) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    tcp = ip[ip_header:total]
    if len(tcp) < 20:
        return None
    src_port, dst_port = struct.unpack_from("!HH", tcp, 0)
    payload = tcp[(tcp[12] >> 4) * 4 :]
    if not payload:
        return None
    return Packet(at, src_port, dst_port, len(payload), bytes(payload[:64]))


class LoopbackCapture:
    """Collects the TCP segments on ``lo`` from a thread until stopped."""

    def __init__(self) -> None:
        try:
            self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_IP))
        except (AttributeError, PermissionError, OSError) as exc:
            raise CaptureUnavailable(f"no raw packet socket: {exc}") from exc
        self._socket.bind(("lo", 0))
        self._socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._socket.settimeout(0.2)
        self.packets: list[Packet] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopback-capture", daemon=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                frame, ancillary, _, _ = self._socket.recvmsg(65536, 64)
            except TimeoutError:
                continue
            stamp = next((data for _, kind, data in ancillary if kind == SO_TIMESTAMPNS), None)
            if stamp is None:
                continue
            seconds, nanoseconds = struct.unpack_from("qq", stamp)
            packet = parse_frame(frame, seconds + nanoseconds / 1e9)
            if packet is not None:
                self.packets.append(packet)

    @contextlib.contextmanager
    def running(self) -> Iterator[list[Packet]]:
        self._thread.start()
        try:
            yield self.packets
        finally:
            self._stopping.set()
            self._thread.join()
            self._socket.close()


@dataclass(frozen=True)
class ApiTimeline:
    """One API request on the wire, in seconds from its POST."""

    before_grpc: float  # POST in -> gRPC request out
    triton: float  # gRPC request out -> first gRPC response in
    after_first_response: float  # that response in -> first SSE chunk out


def api_timelines(packets: Sequence[Packet], api_port: int, grpc_port: int) -> list[ApiTimeline]:
    """Each API request of a one-at-a-time run, from the POST to the first SSE data."""
    timelines = []
    posts = [
        index
        for index, packet in enumerate(packets)
        if packet.dst_port == api_port and packet.head.startswith(b"POST ")
    ]
    for number, start in enumerate(posts):
        stop = posts[number + 1] if number + 1 < len(posts) else len(packets)
        stamps = _api_stamps(packets[start:stop], api_port, grpc_port)
        if stamps is not None:
            posted, sent, answered, streamed = stamps
            timelines.append(ApiTimeline(sent - posted, answered - sent, streamed - answered))
    return timelines


def _api_stamps(
    packets: Sequence[Packet], api_port: int, grpc_port: int
) -> tuple[float, float, float, float] | None:
    posted, sent, answered = packets[0].at, None, None
    for packet in packets:
        if sent is None:
            if packet.dst_port == grpc_port and packet.size >= MIN_GRPC_REQUEST_BYTES:
                sent = packet.at
        elif answered is None:
            if packet.src_port == grpc_port and packet.size >= MIN_GRPC_RESPONSE_BYTES:
                answered = packet.at
        elif packet.src_port == api_port and b"data:" in packet.head:
            return posted, sent, answered, packet.at
    return None


def direct_first_responses(packets: Sequence[Packet], grpc_port: int) -> list[float]:
    """Each direct request of a one-at-a-time run: its gRPC request to the first response."""
    waits = []
    sent: float | None = None
    for packet in packets:
        if packet.dst_port == grpc_port and packet.size >= MIN_GRPC_REQUEST_BYTES:
            sent = packet.at
        elif (
            sent is not None
            and packet.src_port == grpc_port
            and packet.size >= MIN_GRPC_RESPONSE_BYTES
        ):
            waits.append(packet.at - sent)
            sent = None
    return waits


def direct_summary(packets: Sequence[Packet], grpc_port: int) -> dict[str, Any]:
    """Median in ms of a one-at-a-time direct run's gRPC request to first response."""
    waits = direct_first_responses(packets, grpc_port)
    if not waits:
        return {"error": "no complete direct request in the captured packets"}
    return {"requests": len(waits), "first_response_ms": _median_ms(waits)}


def api_summary(packets: Sequence[Packet], api_port: int, grpc_port: int) -> dict[str, Any]:
    """Medians in ms of each part of a one-at-a-time API run's time to its first chunk."""
    timelines = api_timelines(packets, api_port, grpc_port)
    if not timelines:
        return {"error": "no complete API request in the captured packets"}
    return {
        "requests": len(timelines),
        "first_chunk_ms": _median_ms(
            t.before_grpc + t.triton + t.after_first_response for t in timelines
        ),
        "before_grpc_ms": _median_ms(t.before_grpc for t in timelines),
        "triton_ms": _median_ms(t.triton for t in timelines),
        "after_first_response_ms": _median_ms(t.after_first_response for t in timelines),
    }


def _median_ms(values: Iterable[float]) -> float:
    return round(float(statistics.median(values)) * 1e3, 3)


def port_of(address: str) -> int:
    """The port of ``host:port`` or ``http://host:port``."""
    return int(address.rsplit(":", 1)[1].split("/", 1)[0])
