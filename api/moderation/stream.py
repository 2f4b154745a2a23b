"""Replies checked as they stream: held back by a bounded window, cut before a match.

The last ``window`` characters are held back and every check looks at them together with as
many already-sent characters, so a match of up to ``window`` characters is caught before any
of it goes out, even when it arrives split across chunks; longer matches are still caught
(and the reply stopped) within twice the window. On a match the reply ends where the match
begins (pattern filters know where; for a model verdict nothing held back is sent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Sequence

from api.backend.types import GenerationChunk
from api.generation.assembly import ReplyState
from api.moderation.filters import ContentFilter


class OutputGuard:
    """Feed text deltas; get back the text that is safe to send."""

    def __init__(
        self, content_filter: ContentFilter, window: int, stops: Sequence[str] = ()
    ) -> None:
        self._filter = content_filter
        self._window = window
        self._stops = tuple(stop for stop in stops if stop)
        self._sent_tail = ""
        self._pending = ""
        self.filtered = False
        # A stop sequence arrived: the reply ends there (the stop matcher after this guard
        # cuts it), so nothing after it is checked, nor held back.
        self._stopped = False

    async def feed(self, delta: str) -> str:
        if self._stopped:
            return delta
        if self.filtered or not delta:
            return ""
        self._pending += delta
        text = self._sent_tail + self._pending
        stop_at = min((i for stop in self._stops if (i := text.find(stop)) >= 0), default=None)
        verdict = await self._filter.check(text if stop_at is None else text[:stop_at])
        if verdict.flagged:
            self.filtered = True
            cut = 0 if verdict.start is None else max(0, verdict.start - len(self._sent_tail))
            safe, self._pending = self._pending[:cut], ""
            return safe
        if stop_at is not None:
            self._stopped = True
            safe, self._pending = self._pending, ""
            return safe
        if len(self._pending) <= self._window:
            return ""
        safe = self._pending[: -self._window]
        self._pending = self._pending[-self._window :]
        self._sent_tail = (self._sent_tail + safe)[-self._window :]
        return safe

    def flush(self) -> str:
        """The held-back text at the end of the reply (it was checked when it arrived)."""
        text, self._pending = self._pending, ""
        return "" if self.filtered else text


async def guarded(
    chunks: AsyncGenerator[GenerationChunk, None], guard: OutputGuard, state: ReplyState
) -> AsyncGenerator[GenerationChunk, None]:
    """``chunks`` with their text passed through ``guard``; ends the reply on a match.

    Leaving ``chunks`` early (on a match) cancels the backend request.
    """
    try:
        async for chunk in chunks:
            text = await guard.feed(chunk.text)
            if guard.filtered:
                state.content_filtered = True
                yield dataclasses.replace(chunk, text=text, final=True)
                return
            if chunk.final:
                yield dataclasses.replace(chunk, text=text + guard.flush())
                return
            yield dataclasses.replace(chunk, text=text)
        if tail := guard.flush():
            yield GenerationChunk(text=tail)
    finally:
        await chunks.aclose()
