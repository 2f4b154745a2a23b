"""The cold-path benchmark: its stamps, its medians, and that it measures only answered requests."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import orjson
import pytest
from starlette.middleware import Middleware

from api.app import create_app
from benchmarks.asgi_bench import bench_settings
from benchmarks.coldpath import (
    FULL,
    NO_GATEWAY,
    SPANS,
    StampingBackend,
    Stamps,
    chat_body,
    middleware_of,
    run,
    served,
    stamped_request,
    summarize,
    table,
)


def test_each_span_is_the_median_of_its_warm_and_of_its_cold_requests() -> None:
    samples = {
        False: [(100.0, 20.0), (120.0, 30.0), (110.0, 25.0)],
        True: [(300.0, 40.0), (500.0, 60.0), (400.0, 50.0)],
    }
    before, after = summarize(FULL, samples)
    assert (before.span, before.warm_us, before.cold_us) == (SPANS[0], 110.0, 400.0)
    assert (after.span, after.warm_us, after.cold_us) == (SPANS[1], 25.0, 50.0)
    assert before.requests == 6 and before.cold_over_warm == pytest.approx(400 / 110)
    assert table([before, after]).splitlines()[1].split()[:3] == ["full", "before", "backend"]
    row = dataclasses.replace(before, variant="AdmissionMiddleware")
    assert table([row]).splitlines()[1].startswith("without AdmissionMiddleware ")


async def one_request(folder: Path, body: bytes) -> Stamps:
    backend = StampingBackend()
    async with served(backend, folder, FULL) as app:
        await stamped_request(app, body, backend.stamps)
    return backend.stamps


def test_a_request_is_stamped_in_the_order_its_work_happens(tmp_path: Path) -> None:
    stamps = asyncio.run(one_request(tmp_path, chat_body(words=20, max_tokens=2)))
    assert 0 < stamps.called < stamps.backend < stamps.first_chunk < stamps.first_body
    before, after = stamps.spans_us()
    assert before > 0 and after > 0


def test_a_refused_request_stops_the_benchmark(tmp_path: Path) -> None:
    # An error reply is cheaper than a served one: measuring it would flatter the API.
    body = orjson.dumps({"model": "no-such-model", "messages": [], "stream": True})
    with pytest.raises(RuntimeError, match="status 4"):
        asyncio.run(one_request(tmp_path, body))


def test_a_short_run_reports_both_spans_of_each_variant() -> None:
    variants = (FULL, NO_GATEWAY, "AdmissionMiddleware")
    rows = asyncio.run(run(variants, requests=6, evict_mib=1, words=10))
    assert [(row.variant, row.span) for row in rows] == [
        (variant, span) for variant in variants for span in SPANS
    ]
    assert all(row.requests == 6 and row.warm_us > 0 and row.cold_us > 0 for row in rows)


def class_names(stack: list[Middleware]) -> list[str]:
    return [getattr(entry.cls, "__name__", "") for entry in stack]


def test_a_variant_takes_out_exactly_what_it_names(tmp_path: Path) -> None:
    stack = create_app(bench_settings(tmp_path)).user_middleware
    assert middleware_of(FULL, stack) == stack
    without = class_names(middleware_of("AdmissionMiddleware", stack))
    assert without == [name for name in class_names(stack) if name != "AdmissionMiddleware"]
    no_gateway = set(class_names(middleware_of(NO_GATEWAY, stack)))
    assert not no_gateway & {"AuthMiddleware", "AdmissionMiddleware", "UsageMiddleware"}
    with pytest.raises(ValueError, match="NoSuchMiddleware"):
        middleware_of("NoSuchMiddleware", stack)
