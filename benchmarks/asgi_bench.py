"""CPU cost of the app itself per request and per chunk, with no sockets and no server.

``python -m benchmarks.asgi_bench`` drives the real app (all middleware, auth, limits, usage
records) over the in-process zero-cost backend by calling it as an ASGI callable, and divides
the process's CPU time by the work done. CPU time, unlike wall time, hardly moves when other
processes share the machine, which makes this the before/after yardstick for hot-path changes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.types import Message

from api.app import create_app
from api.logs import configure_logging
from api.settings import (
    AuthSettings,
    DatabaseSettings,
    LimitSettings,
    Settings,
    TierLimits,
    UsageSettings,
)
from benchmarks.inprocess import ZeroCostBackend, without_gateway
from benchmarks.stack import BENCH_TIER

KEY = "sk-bench-asgi-0123456789abcdefghijklmnopqrstuv"


@dataclass(frozen=True)
class AsgiResult:
    mode: str
    gateway: bool
    requests: int
    tokens_per_request: int
    cpu_us_per_request: float
    cpu_us_per_chunk: float
    requests_per_cpu_s: float
    chunks_per_cpu_s: float


def bench_settings(folder: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{folder / 'api.db'}"),
        usage=UsageSettings(journal_dir=folder / "journal"),
        auth=AuthSettings(bootstrap_key=SecretStr(KEY), bootstrap_tier="bench"),
        limits=LimitSettings(
            tiers={"bench": TierLimits.model_validate(BENCH_TIER)},
            default_tier="bench",
            ip_requests_per_minute=10**9,
        ),
        log_level="info",
    )


def scope_for(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 9000),
    }


async def one_request(
    app: Starlette, body: bytes, on_body: Callable[[Message], None] | None = None
) -> int:
    """Send one request through the app; returns the number of body messages sent back.
    ``on_body`` sees each body message as the app sends it."""
    done = asyncio.Event()
    delivered = False
    messages = 0

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal messages
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"status {message['status']}")
        if message["type"] == "http.response.body":
            messages += 1
            if on_body is not None:
                on_body(message)
            if not message.get("more_body", False):
                done.set()

    await app(scope_for(body), receive, send)
    done.set()
    return messages


async def measure(app: Starlette, body: bytes, requests: int, concurrency: int) -> float:
    """Process CPU seconds for ``requests`` requests, ``concurrency`` at a time."""
    pending = iter(range(min(requests, 50)))  # warm-up: caches, first connections

    async def client() -> None:
        for _ in pending:
            await one_request(app, body)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    pending = iter(range(requests))
    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.process_time() - started


async def run(
    modes: Sequence[str], gateways: Sequence[bool], requests: int, tokens: int, concurrency: int
) -> list[AsgiResult]:
    results = []
    for gateway in gateways:
        with tempfile.TemporaryDirectory() as folder:
            app = create_app(bench_settings(Path(folder)), lambda _: ZeroCostBackend())
            if not gateway:
                app.user_middleware = without_gateway(app.user_middleware)
            async with app.router.lifespan_context(app):
                for mode in modes:
                    stream = mode == "stream"
                    count = tokens if stream else max(tokens // 4, 1)
                    body = orjson.dumps(
                        {
                            "model": "tiny-chat",
                            "messages": [{"role": "user", "content": "Say something."}],
                            "max_tokens": count,
                            "stream": stream,
                        }
                    )
                    cpu = await measure(app, body, requests, concurrency)
                    results.append(_result(mode, gateway, requests, count, cpu))
    return results


def _result(mode: str, gateway: bool, requests: int, tokens: int, cpu: float) -> AsgiResult:
    chunks = requests * tokens
    return AsgiResult(
        mode=mode,
        gateway=gateway,
        requests=requests,
        tokens_per_request=tokens,
        cpu_us_per_request=round(cpu / requests * 1e6, 1),
        cpu_us_per_chunk=round(cpu / chunks * 1e6, 2),
        requests_per_cpu_s=round(requests / cpu, 1),
        chunks_per_cpu_s=round(chunks / cpu, 1),
    )


def run_as_served() -> None:
    """Logging as deployed (JSON lines at info, written to /dev/null instead of the console)
    and uvloop, as uvicorn runs the app."""
    configure_logging("info", "json")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=64, help="stream chunks; json gets 1/4")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--modes", default="stream,json")
    args = parser.parse_args(argv)
    run_as_served()
    results = asyncio.run(
        run(args.modes.split(","), (True, False), args.requests, args.tokens, args.concurrency)
    )
    for result in results:
        sys.stdout.write(orjson.dumps(asdict(result)).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
