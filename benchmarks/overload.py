"""Overload: many concurrent streaming clients against the API, every outcome accounted for.

Each client streams a short chat completion again and again until the duration is over; a
refusal (429/503) makes it wait ``Retry-After`` (capped, jittered) as a well-behaved client
would. Every request ends as exactly one of: served (200, a finish_reason, ``[DONE]``, no
error event), refused (429/503 with OpenAI's error envelope), or unexplained (anything else,
kept with its detail). The API process's resident memory is sampled throughout.

    python -m benchmarks.overload --url http://127.0.0.1:9000 --key sk-... --pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_BODY: dict[str, Any] = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "Count from 1 to 10"}],
    "max_tokens": 8,
    "stream": True,
}


@dataclass
class LoadReport:
    """Outcome counts, unexplained details and latencies of one run."""

    outcomes: Counter[str] = field(default_factory=Counter)
    unexplained: list[str] = field(default_factory=list)
    served_s: list[float] = field(default_factory=list)
    refused_s: list[float] = field(default_factory=list)
    rss_samples: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def served(self) -> int:
        return self.outcomes["served"]

    @property
    def refused(self) -> int:
        return sum(n for kind, n in self.outcomes.items() if kind.startswith("refused"))

    def summary(self) -> dict[str, Any]:
        return {
            "requests": sum(self.outcomes.values()),
            "outcomes": dict(sorted(self.outcomes.items())),
            "unexplained": self.unexplained[:20],
            "served_p50_s": _quantile(self.served_s, 0.5),
            "served_p99_s": _quantile(self.served_s, 0.99),
            "served_max_s": max(self.served_s, default=None),
            "refused_p99_s": _quantile(self.refused_s, 0.99),
            "rss_peak_mib": max(self.rss_samples, default=0) / 2**20,
            "wall_s": round(self.wall_s, 2),
        }


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) * 1024 if found else 0


@dataclass(frozen=True)
class Target:
    """Where the requests go, and the one request every client sends (bytes on the wire)."""

    host: str
    port: int
    request: bytes

    @classmethod
    def chat(cls, url: str, key: str, body: dict[str, Any]) -> Target:
        parsed = urlsplit(url)
        payload = json.dumps(body).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 80, head.encode() + payload)


async def one_request(target: Target) -> tuple[str, float]:
    """Send one request on a new connection; its outcome kind and the Retry-After to honour.

    A plain HTTP/1.1 exchange over asyncio streams: with hundreds of connections, httpx's
    pool costs more CPU than the server it measures, on the same cores.
    """
    try:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    except OSError as exc:
        return f"unexplained: connect failed: {exc}", 0.0
    try:
        writer.write(target.request)
        status, headers, body = await _read_response(reader)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return f"unexplained: {type(exc).__name__}: {exc}", 0.0
    finally:
        writer.close()
    if status == 200:
        events = [line for line in body.decode().splitlines() if line.startswith("data:")]
        return _stream_outcome(events), 0.0
    return _refusal_outcome(status, headers, body)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        return status, headers, await _read_chunked(reader)
    if "content-length" in headers:
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    return status, headers, await reader.read()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()  # the CRLF after each chunk
    return b"".join(parts)


def _stream_outcome(events: list[str]) -> str:
    if not events or events[-1] != "data: [DONE]":
        return "unexplained: stream without [DONE]"
    payloads = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    if errors := [p["error"] for p in payloads if "error" in p]:
        return f"unexplained: stream error event {errors[0].get('code')}"
    finished = any(c.get("finish_reason") for p in payloads for c in p.get("choices", []))
    return "served" if finished else "unexplained: stream without finish_reason"


def _refusal_outcome(status: int, headers: dict[str, str], body: bytes) -> tuple[str, float]:
    try:
        error = json.loads(body)["error"]
        code = str(error["code"])
        assert isinstance(error["message"], str) and error["type"]
    except (ValueError, KeyError, TypeError, AssertionError):
        return f"unexplained: {status} without an error envelope", 0.0
    if status not in (429, 503):
        return f"unexplained: {status} {code}", 0.0
    return f"refused {status} {code}", float(headers.get("retry-after", "1"))


async def client_loop(
    target: Target,
    until: float,
    report: LoadReport,
    max_wait_s: float,
) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        started = loop.time()
        kind, retry_after = await one_request(target)
        elapsed = loop.time() - started
        report.outcomes[kind.split(":")[0]] += 1
        if kind.startswith("unexplained"):
            report.unexplained.append(kind)
        (report.served_s if kind == "served" else report.refused_s).append(elapsed)
        if retry_after:
            await asyncio.sleep(min(retry_after, max_wait_s) * random.uniform(0.5, 1.0))


async def sample_rss(pid: int | None, report: LoadReport, stop: asyncio.Event) -> None:
    while pid is not None and not stop.is_set():
        report.rss_samples.append(rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.25)


async def run(
    url: str,
    key: str,
    clients: int = 500,
    duration_s: float = 5.0,
    body: dict[str, Any] | None = None,
    pid: int | None = None,
    max_wait_s: float = 1.0,
) -> LoadReport:
    """``clients`` concurrent clients for ``duration_s`` (requests running then still finish)."""
    report = LoadReport()
    target = Target.chat(url, key, body or DEFAULT_BODY)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, report, stop))
    started = time.monotonic()
    until = asyncio.get_running_loop().time() + duration_s
    await asyncio.gather(*(client_loop(target, until, report, max_wait_s) for _ in range(clients)))
    report.wall_s = time.monotonic() - started
    stop.set()
    await sampler
    return report


def _quantile(values: list[float], q: float) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return round(statistics.quantiles(values, n=100)[int(q * 100) - 1], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--pid", type=int, help="API process whose memory to sample")
    args = parser.parse_args()
    report = asyncio.run(run(args.url, args.key, args.clients, args.duration, pid=args.pid))
    print(json.dumps(report.summary(), indent=2))  # a command-line report


if __name__ == "__main__":
    main()
