"""Profile of the API's hot path: py-spy samples a worker under wrk load.

``python -m benchmarks.hotpath`` serves the in-process app (one worker, gateway on), drives it
with wrk and records py-spy's collapsed stacks, then prints the functions that cost the most
(self time and inclusive time, by share of samples). The raw stacks are kept next to the
summary for a flamegraph.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import wrk
from benchmarks.ceiling import chat_body, serve
from benchmarks.tools import BenchTools, ensure_tools

logger = logging.getLogger(__name__)

# py-spy frames look like "function (path/to/file.py:123)"; the line number is dropped.
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


@dataclass(frozen=True)
class HotSpot:
    function: str
    self_share: float
    inclusive_share: float


def frame_key(frame: str) -> str:
    """``function (file)`` with the site-packages / project prefix and line number removed."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['name']} ({path})"


def hot_spots(collapsed: Iterable[str], top: int = 25) -> tuple[list[HotSpot], int]:
    """The ``top`` functions by self time and their inclusive time, plus the sample count."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_key(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for key in set(frames):
            inclusive[key] += count
    ranked = sorted(own, key=lambda key: own[key], reverse=True)[:top]
    spots = [HotSpot(key, own[key] / total, inclusive[key] / total) for key in ranked]
    return spots, total


def top_inclusive(collapsed: Iterable[str], names: Iterable[str]) -> dict[str, float]:
    """Inclusive share of every function whose key contains one of ``names``."""
    wanted = tuple(names)
    hits: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        keys = {frame_key(frame) for frame in stack.split(";")}
        for name in wanted:
            if any(name in key for key in keys):
                hits[name] += count
    return {name: hits[name] / total for name in wanted} if total else {}


def profile(tools: BenchTools, mode: str, gateway: bool, seconds: float, workdir: Path) -> Path:
    """Record one profile; returns the collapsed-stacks file."""
    with serve(1, gateway, workdir) as (url, key, master):
        tokens = 64 if mode == "stream" else 16
        script = wrk.lua_script(
            chat_body(tokens, mode == "stream"), {"Authorization": f"Bearer {key}"}
        )
        out = workdir / f"profile-{mode}-{'gateway' if gateway else 'bare'}.txt"
        argv = [
            str(tools.py_spy), "record", "--pid", str(master), "--duration", f"{seconds + 2:.0f}",
            "--rate", "250", "--format", "raw", "--nonblocking", "-o", str(out),
        ]  # fmt: skip
        spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        result = wrk.run(tools.wrk, f"{url}/v1/chat/completions", script, 32, seconds, workdir)
        spy.wait(timeout=seconds + 60)
        logger.info(
            "profiled %s (gateway %s): %.0f requests/s", mode, gateway, result.requests_per_s
        )
        return out


def report(path: Path, top: int) -> str:
    lines = path.read_text().splitlines()
    spots, total = hot_spots(lines, top)
    rows = [f"{path.name}: {total} samples", f"{'self':>6} {'incl':>6}  function"]
    rows += [
        f"{spot.self_share:6.1%} {spot.inclusive_share:6.1%}  {spot.function}" for spot in spots
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["stream", "json"], default="stream")
    parser.add_argument("--no-gateway", action="store_true")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path(".cache/bench-work/profile"))
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    path = profile(ensure_tools(), args.mode, not args.no_gateway, args.seconds, args.workdir)
    logger.info("\n%s", report(path, args.top))


if __name__ == "__main__":
    main()
