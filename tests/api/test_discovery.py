from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.backend.discovery import join_address, resolver_for, split_address
from api.settings import TritonEndpoint


async def test_a_dns_target_resolves_every_address_with_its_port() -> None:
    resolve, dynamic, fixed = resolver_for(TritonEndpoint(target="dns:///localhost:8001"))
    assert dynamic and fixed is None
    addresses = await resolve()
    assert "127.0.0.1:8001" in addresses and all(a.endswith(":8001") for a in addresses)


async def test_a_file_target_is_read_again_at_every_resolution(tmp_path: Path) -> None:
    hosts = tmp_path / "replicas.json"
    hosts.write_text(json.dumps(["10.0.0.5:8001"]))
    resolve, dynamic, fixed = resolver_for(TritonEndpoint(target=f"file://{hosts}"))
    assert dynamic and fixed is None
    assert await resolve() == ["10.0.0.5:8001"]
    hosts.write_text(json.dumps(["10.0.0.5:8001", "10.0.0.6:8001", "10.0.0.5:8001"]))
    assert await resolve() == ["10.0.0.5:8001", "10.0.0.6:8001"]
    hosts.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="JSON list"):
        await resolve()


async def test_fixed_addresses_never_change() -> None:
    resolve, dynamic, fixed = resolver_for(TritonEndpoint(addresses=["a:1", "b:1", "a:1"]))
    assert not dynamic and fixed is None and await resolve() == ["a:1", "b:1"]
    _, dynamic, fixed = resolver_for(TritonEndpoint(target="triton:8001"))
    assert not dynamic and fixed == "triton:8001"


def test_addresses_split_and_join_with_ipv6() -> None:
    assert split_address("[fd00::1]:8001") == ("fd00::1", 8001)
    assert join_address("fd00::1", 8001) == "[fd00::1]:8001"
    assert split_address("triton.ns.svc:8001") == ("triton.ns.svc", 8001)
    with pytest.raises(ValueError):
        split_address("triton-without-port")
