"""Stop sequences applied to streamed text, exactly and without leaking them.

The engine stops on stop-word token ids, but the same string can tokenize differently, so the
text is checked here too. Text that could still turn out to be the start of a stop sequence is
held back until the next delta decides it.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Feed text deltas; get back the text that is safe to emit."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._pending = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        """Text to emit now; after a stop sequence is seen, nothing more is emitted."""
        if self.stopped or not delta:
            return ""
        if not self._stops:
            return delta
        text = self._pending + delta
        cut = self._first_stop(text)
        if cut is not None:
            self.stopped = True
            self._pending = ""
            return text[:cut]
        held = self._held_back(text)
        self._pending = text[len(text) - held :] if held else ""
        return text[: len(text) - held]

    def flush(self) -> str:
        """The held-back text, once the stream has ended without completing a stop."""
        text, self._pending = self._pending, ""
        return "" if self.stopped else text

    def _first_stop(self, text: str) -> int | None:
        positions = [index for stop in self._stops if (index := text.find(stop)) >= 0]
        return min(positions) if positions else None

    def _held_back(self, text: str) -> int:
        """Length of the longest tail of ``text`` that begins some stop sequence."""
        longest = min(len(text), max(len(stop) for stop in self._stops) - 1)
        for size in range(longest, 0, -1):
            tail = text[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0
