"""Compiled grammars by guide, compiled once, on worker threads off the engine's decode loop.

A guide is compiled at most once while it stays cached: requests with the same (guide type,
guide text) share one future, whether the compile is done or still running. Compiles run on a
few daemon threads (xgrammar releases the GIL while it compiles, so the decode loop keeps
stepping); a compile cannot be interrupted, so a request that stops waiting (its time budget,
a cancellation) only lets go of the future: the compile finishes in the background and fills
the cache, unless no request was waiting any more before it started, then it never runs.

The workers run at nice +10, so the decode loop wins the CPU from a compile. Threads, not a
subprocess: a compiled grammar would have to come back serialized, and for a
500-property schema xgrammar's JSON form is 85 MB, 3.8 s to write and 1.5 s to read (with the
GIL held) and 1.6 GB at peak: more than most compiles cost.

Bounded: at most ``max_entries`` grammars and ``max_bytes`` of them (xgrammar's own
``memory_size_bytes``), least recently used first out. Compiles that are running or queued
are never evicted (requests wait on them); failures are cached too, so a guide that does not
compile fails at once the next time.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from inference.request import GuidedDecoding, GuideType

logger = logging.getLogger(__name__)

T = TypeVar("T")
GuideKey = tuple[GuideType, str]
_Job = tuple[Future[T], GuidedDecoding] | None


@dataclass
class _Entry(Generic[T]):
    future: Future[T]
    waiters: int = 0
    size: int = field(default=0)


class GrammarCache(Generic[T]):
    """Thread-safe LRU of compile futures, fed by ``workers`` daemon threads."""

    def __init__(
        self,
        compile_guide: Callable[[GuidedDecoding], T],
        size_of: Callable[[T], int],
        workers: int = 1,
        max_entries: int = 64,
        max_bytes: int = 64 << 20,
    ) -> None:
        self._compile = compile_guide
        self._size_of = size_of
        self._max_entries = max(1, max_entries)
        self._max_bytes = max_bytes
        self._entries: collections.OrderedDict[GuideKey, _Entry[T]] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job[T]] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"grammar-compile-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()
        self.compiles = 0

    def acquire(self, guided: GuidedDecoding) -> Future[T]:
        """The compiled grammar of ``guided``: cached, being compiled, or queued now.

        The caller waits on the future; one that stops waiting before it is done calls
        :meth:`release`.
        """
        key = (guided.guide_type, guided.guide)
        with self._lock:
            entry = self._entries.get(key)
            created = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry(Future())
            self._entries.move_to_end(key)
            entry.waiters += 1
            future = entry.future
        if created:
            future.add_done_callback(lambda done: self._settled(key, done))
            self._jobs.put((future, guided))
        return future

    def release(self, guided: GuidedDecoding, future: Future[T]) -> None:
        """A waiter gives up; a compile nobody waits for any more and not started never runs."""
        key = (guided.guide_type, guided.guide)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.future is not future:
                return
            entry.waiters -= 1
            if entry.waiters > 0 or future.running() or future.done():
                return
            del self._entries[key]
        # Outside the lock: cancelling runs the done callbacks. Should a worker have taken the
        # job meanwhile, the compile runs once more, uncached.
        future.cancel()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes held by the cached grammars, as xgrammar measures them."""
        with self._lock:
            return self._bytes

    def close(self, timeout_s: float = 0.0) -> None:
        """Stop the workers once their current compile is done; queued compiles never run.

        Waits up to ``timeout_s`` for a compile under way: a process that exits during one
        is aborted by xgrammar's C++ runtime.
        """
        with self._lock:
            futures = [entry.future for entry in self._entries.values()]
            self._entries.clear()
            self._bytes = 0
        for future in futures:
            future.cancel()
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        _lower_priority()
        while (job := self._jobs.get()) is not None:
            future, guided = job
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self.compiles += 1
            try:
                future.set_result(self._compile(guided))
            except BaseException as error:  # handed to the requests waiting on it
                future.set_exception(error)

    def _settled(self, key: GuideKey, future: Future[T]) -> None:
        """Account a finished grammar's size, then evict down to the bounds."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.future is not future:
                return
            if future.cancelled():
                del self._entries[key]
                return
            if future.exception() is None:
                entry.size = max(1, self._size_of(future.result()))
                self._bytes += entry.size
            self._evict()

    def _evict(self) -> None:
        done = [key for key, entry in self._entries.items() if entry.future.done()]
        for key in done:
            if len(self._entries) <= self._max_entries and self._bytes <= self._max_bytes:
                return
            entry = self._entries.pop(key)
            self._bytes -= entry.size
            logger.debug("evicted the compiled %s guide (%d bytes)", key[0].value, entry.size)


# Compiles yield the CPU to the engine's decode steps (and to Triton's other models).
_COMPILE_NICENESS = 10


def _lower_priority() -> None:
    """Run the calling thread at a lower CPU priority (Linux threads have their own nice)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _COMPILE_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: full priority then
        logger.debug("could not lower the priority of the grammar compile thread")
