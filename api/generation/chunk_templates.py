"""Pre-rendered JSON for the per-token chunks of a streamed reply.

Consecutive chunks of one reply differ only in their text. Building a pydantic model and
dumping it for every token cost more than the rest of the chunk's way through the API, so each
choice's chunk is rendered once by pydantic with a marker as its text and split there; a
token's JSON is then the two halves around orjson's encoding of its text. The schema stays the
one source of the chunk's shape.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

# A private-use character pair: never produced by a tokenizer, and not escaped by either encoder.
MARK = "\ue000text\ue000"
_ENCODED_MARK = orjson.dumps(MARK)

Render = Callable[[int, str], bytes]


class SplicedChunks:
    """``encode(index, text)`` equals ``render(index, text)`` as JSON, at a fraction of the cost.

    ``render`` builds the full chunk of choice ``index`` carrying ``text``.
    """

    def __init__(self, render: Render) -> None:
        self._render = render
        self._halves: dict[int, tuple[bytes, bytes]] = {}

    def prepare(self, index: int) -> tuple[bytes, bytes]:
        """Render choice ``index``'s template now (once), not with its first token."""
        halves = self._halves.get(index)
        if halves is None:
            halves = self._halves[index] = split_at_mark(self._render(index, MARK))
        return halves

    def encode(self, index: int, text: str) -> bytes:
        halves = self._halves.get(index) or self.prepare(index)
        try:
            return halves[0] + orjson.dumps(text) + halves[1]
        except orjson.JSONEncodeError:
            # Text orjson refuses (a lone surrogate): let pydantic decide what to do with it.
            return self._render(index, text)


def split_at_mark(rendered: bytes) -> tuple[bytes, bytes]:
    """The bytes before and after the one JSON string that is ``MARK``."""
    head, found, tail = rendered.partition(_ENCODED_MARK)
    if not found or _ENCODED_MARK in tail:
        raise ValueError("the rendered chunk must hold the marker exactly once")
    return head, tail
