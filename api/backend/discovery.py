"""Where an endpoint's replicas are: fixed addresses, a DNS name, or a file, resolved again.

A resolver is an async callable returning the replicas' ``host:port`` addresses now.
``dns:///name:port`` asks the system resolver for every A/AAAA record of ``name`` (a
Kubernetes headless Service lists one per ready pod), so pods an HPA adds appear at the next
resolution and pods that go away disappear. ``file:///path`` reads a JSON list of addresses
(what a test, or a sidecar writing the list, controls). Anything else is one fixed address.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from api.settings import TritonEndpoint

Resolver = Callable[[], Awaitable[list[str]]]

DNS_SCHEME = "dns:"
FILE_SCHEME = "file://"


def resolver_for(endpoint: TritonEndpoint) -> tuple[Resolver, bool, str | None]:
    """The endpoint's resolver, whether its answer can change (worth resolving again), and
    its one address when it is a single fixed one (no balancing needed)."""
    target = endpoint.target or ""
    if target.startswith(DNS_SCHEME):
        host, port = split_address(target.removeprefix(DNS_SCHEME).lstrip("/"))
        return dns_resolver(host, port), True, None
    if target.startswith(FILE_SCHEME):
        return file_resolver(Path(target.removeprefix(FILE_SCHEME))), True, None
    addresses = list(dict.fromkeys(endpoint.addresses or [target]))
    return static_resolver(addresses), False, addresses[0] if len(addresses) == 1 else None


def static_resolver(addresses: Sequence[str]) -> Resolver:
    fixed = list(dict.fromkeys(addresses))

    async def resolve() -> list[str]:
        return list(fixed)

    return resolve


def dns_resolver(host: str, port: int) -> Resolver:
    """Every address ``host`` resolves to, each with ``port``, sorted (stable across calls)."""

    async def resolve() -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = {join_address(str(info[4][0]), port) for info in infos}
        return sorted(found)

    return resolve


def file_resolver(path: Path) -> Resolver:
    """The JSON list of ``host:port`` strings in ``path``, read at every call."""

    async def resolve() -> list[str]:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        addresses = json.loads(text)
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ValueError(f"{path} must hold a JSON list of host:port strings")
        return list(dict.fromkeys(addresses))

    return resolve


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as its parts."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{address!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
