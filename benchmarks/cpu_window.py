"""A gateway's CPU time inside a time window known only afterwards.

A load tool's own start-up (AIPerf spends tens of seconds on it on a busy 2-core machine)
and its warm-up fall inside any CPU reading taken around the whole run, together with the
gateway's idle work (health probes, usage flushes). A thread samples the gateway's CPU time
every ``interval_s`` with the wall clock; afterwards the CPU spent between the first request
sent and the last reply received of the measured phase is interpolated from the samples.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field


@dataclass
class CpuSamples:
    """(wall-clock ns, CPU seconds) pairs, in time order."""

    times_ns: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)

    def add(self, time_ns: int, cpu_s: float) -> None:
        self.times_ns.append(time_ns)
        self.cpu_s.append(cpu_s)

    def at(self, time_ns: int) -> float:
        """CPU seconds at ``time_ns``, linear between the samples around it."""
        if not self.times_ns:
            raise ValueError("no samples")
        index = bisect.bisect_left(self.times_ns, time_ns)
        if index <= 0:
            return self.cpu_s[0]
        if index >= len(self.times_ns):
            return self.cpu_s[-1]
        t0, t1 = self.times_ns[index - 1], self.times_ns[index]
        c0, c1 = self.cpu_s[index - 1], self.cpu_s[index]
        return c0 + (c1 - c0) * (time_ns - t0) / (t1 - t0) if t1 > t0 else c1

    def between(self, start_ns: int, end_ns: int) -> float:
        return self.at(end_ns) - self.at(start_ns)

    def rate(self) -> float:
        """Average CPU seconds per second over all samples (an idle reading)."""
        if len(self.times_ns) < 2:
            return 0.0
        span = (self.times_ns[-1] - self.times_ns[0]) / 1e9
        return (self.cpu_s[-1] - self.cpu_s[0]) / span if span > 0 else 0.0


@contextlib.contextmanager
def sampling(read_cpu: Callable[[], float], interval_s: float = 0.1) -> Iterator[CpuSamples]:
    """Sample ``read_cpu`` until the block ends (one sample at each end too)."""
    samples, stop = CpuSamples(), threading.Event()
    samples.add(time.time_ns(), read_cpu())

    def loop() -> None:
        while not stop.wait(interval_s):
            samples.add(time.time_ns(), read_cpu())

    thread = threading.Thread(target=loop, name="cpu-sampler", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
        samples.add(time.time_ns(), read_cpu())


def window(records: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(first start, last end) of (start_ns, end_ns) request records."""
    if not records:
        raise ValueError("no requests")
    return min(start for start, _ in records), max(end for _, end in records)
