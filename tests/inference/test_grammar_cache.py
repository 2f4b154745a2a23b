"""The compile cache: one compile per guide, bounded, and nothing compiled for nobody.

The compile function here stands in for xgrammar (tests/inference/test_guided.py compiles real
grammars): it counts its calls and can be held, so that what the cache does while a compile runs
is observable without timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from inference.grammar_cache import GrammarCache
from inference.request import GuidedDecoding, GuideType


class Compiler:
    """Compiles a guide to its text; ``hold`` keeps every compile waiting until ``go``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started = threading.Semaphore(0)
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, guided: GuidedDecoding) -> str:
        self.calls.append(guided.guide)
        self.started.release()
        self.gate.wait(10)
        if guided.guide == "bad":
            raise ValueError("invalid_guided_decoding: bad guide")
        return guided.guide

    def hold(self) -> None:
        self.gate.clear()

    def go(self) -> None:
        self.gate.set()


def guide(text: str) -> GuidedDecoding:
    return GuidedDecoding(GuideType.REGEX, text)


@pytest.fixture
def compiler() -> Compiler:
    return Compiler()


@pytest.fixture
def cache(compiler: Compiler) -> Iterator[GrammarCache[str]]:
    grammars: GrammarCache[str] = GrammarCache(compiler, size_of=len, workers=1, max_entries=3)
    yield grammars
    compiler.go()
    grammars.close()


def test_a_repeated_guide_compiles_once(cache: GrammarCache[str], compiler: Compiler) -> None:
    assert cache.acquire(guide("abc")).result(5) == "abc"
    assert cache.acquire(guide("abc")).result(5) == "abc"
    assert compiler.calls == ["abc"]
    # The guide type is part of the key.
    cache.acquire(GuidedDecoding(GuideType.EBNF_GRAMMAR, "abc")).result(5)
    assert compiler.calls == ["abc", "abc"]


def test_requests_for_a_guide_being_compiled_share_the_compile(
    cache: GrammarCache[str], compiler: Compiler
) -> None:
    compiler.hold()
    first = cache.acquire(guide("abc"))
    assert compiler.started.acquire(timeout=5)
    second = cache.acquire(guide("abc"))
    assert second is first and not first.done()
    compiler.go()
    assert second.result(5) == "abc"
    assert compiler.calls == ["abc"]


def test_least_recently_used_grammars_leave_first(
    cache: GrammarCache[str], compiler: Compiler
) -> None:
    for text in ("a", "b", "c"):
        cache.acquire(guide(text)).result(5)
    cache.acquire(guide("a")).result(5)  # "a" is now the most recently used
    cache.acquire(guide("d")).result(5)
    assert len(cache) == 3
    cache.acquire(guide("a")).result(5)
    cache.acquire(guide("c")).result(5)
    assert compiler.calls == ["a", "b", "c", "d"]
    cache.acquire(guide("b")).result(5)
    assert compiler.calls == ["a", "b", "c", "d", "b"]


def test_the_cache_holds_at_most_max_bytes(compiler: Compiler) -> None:
    cache: GrammarCache[str] = GrammarCache(compiler, size_of=len, max_bytes=10)
    try:
        for text in ("aaaa", "bbbb", "cccc"):
            cache.acquire(guide(text)).result(5)
        assert cache.size_bytes == 8 and len(cache) == 2
        cache.acquire(guide("aaaa")).result(5)
        assert compiler.calls == ["aaaa", "bbbb", "cccc", "aaaa"]
        # A grammar larger than the whole cache is handed out, never kept.
        assert cache.acquire(guide("x" * 11)).result(5) == "x" * 11
        assert cache.size_bytes <= 10
    finally:
        cache.close()


def test_a_failed_compile_is_cached_too(cache: GrammarCache[str], compiler: Compiler) -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="bad guide"):
            cache.acquire(guide("bad")).result(5)
    assert compiler.calls == ["bad"]


def test_a_queued_compile_nobody_waits_for_never_runs(
    cache: GrammarCache[str], compiler: Compiler
) -> None:
    compiler.hold()
    running = cache.acquire(guide("slow"))
    assert compiler.started.acquire(timeout=5)
    queued = cache.acquire(guide("queued"))
    shared = cache.acquire(guide("shared"))
    again = cache.acquire(guide("shared"))
    cache.release(guide("queued"), queued)
    cache.release(guide("shared"), shared)  # one of its two waiters is left
    # A compile under way cannot be stopped: it finishes and fills the cache.
    cache.release(guide("slow"), running)
    compiler.go()
    assert again.result(5) == "shared" and running.result(5) == "slow"
    assert queued.cancelled()
    assert compiler.calls == ["slow", "shared"]
    cache.acquire(guide("slow")).result(5)
    assert compiler.calls == ["slow", "shared"]


def test_compiles_run_on_the_workers_not_the_caller(
    cache: GrammarCache[str], compiler: Compiler
) -> None:
    compiler.hold()
    future = cache.acquire(guide("abc"))  # returns at once although the compile is held
    assert not future.done()
    compiler.go()
    assert future.result(5) == "abc"
