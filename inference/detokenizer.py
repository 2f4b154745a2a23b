"""Incremental detokenization: streamed token ids in, text deltas out.

Decoding each streamed chunk on its own drops the leading spaces that SentencePiece and
byte-level BPE encode relative to the previous token, and splits multi-byte UTF-8 characters
whose bytes arrive in different tokens. `IncrementalDetokenizer` decodes a small window of
recent tokens instead (the prefix/read-offset technique used by TGI and vLLM), so its deltas
concatenate to exactly `tokenizer.decode(all_ids, skip_special_tokens=True)` while each step
costs O(window), not O(history).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol

_REPLACEMENT = "\ufffd"


class TokenDecoder(Protocol):
    """The part of a Hugging Face tokenizer this module uses."""

    def decode(self, token_ids: list[int], skip_special_tokens: bool = ..., **kwargs: Any) -> Any:
        """Decode ids to text."""

    def __len__(self) -> int:
        """Every id the tokenizer knows, added tokens included."""


class IncrementalDetokenizer:
    """Turns a growing token sequence into text deltas.

    Invariant: `ids[prefix_offset:read_offset]` decodes to text already emitted and ends on a
    complete character, so decoding `ids[prefix_offset:]` and cutting that prefix off yields
    exactly the new text, with the space or byte context the window start provides.
    """

    def __init__(self, tokenizer: TokenDecoder) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        # What `flush` would return now: the held-back tail, an incomplete character as U+FFFD.
        self.pending = ""

    @property
    def num_tokens(self) -> int:
        """How many token ids were fed so far."""
        return len(self._ids)

    def push(self, new_ids: Iterable[int]) -> str:
        """Feed the next token ids; return the text they complete (possibly "").

        Text whose last character is still incomplete (decodes to U+FFFD at the end) is held
        back until a later token completes it, or until `flush`.
        """
        self._ids.extend(int(i) for i in new_ids)
        prefix_text = self._decode(self._prefix_offset, self._read_offset)
        new_text = self._decode(self._prefix_offset, len(self._ids))
        if len(new_text) <= len(prefix_text) or new_text.endswith(_REPLACEMENT):
            self.pending = new_text[len(prefix_text) :]
            return ""
        self.pending = ""
        # Move the window forward: the next decode starts at the tokens just emitted, which
        # still give the following token its leading-space context.
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        """Emit whatever is held back (an incomplete character decodes as U+FFFD)."""
        prefix_text = self._decode(self._prefix_offset, self._read_offset)
        new_text = self._decode(self._prefix_offset, len(self._ids))
        self._prefix_offset = self._read_offset = len(self._ids)
        self.pending = ""
        return new_text[len(prefix_text) :]

    def _decode(self, start: int, stop: int) -> str:
        if start >= stop:
            return ""
        text = self._tokenizer.decode(self._ids[start:stop], skip_special_tokens=True)
        return str(text)


class DetokenizerCache:
    """Per-request detokenizers, bounded by count (LRU) and by idle time (TTL).

    A non-decoupled postprocessing model never learns that a stream ended (the final response
    of the LLM step looks like any other), so entries are not removed explicitly: abandoned or
    finished streams age out, and `capacity` caps the memory of a burst.
    """

    def __init__(
        self,
        factory: Callable[[], IncrementalDetokenizer],
        capacity: int = 4096,
        ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("capacity must be >= 1 and ttl_s > 0")
        self._factory = factory
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, IncrementalDetokenizer]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> IncrementalDetokenizer:
        """The detokenizer of `key`, created on first use; marks it as recently used."""
        now = self._clock()
        self._expire(now)
        entry = self._entries.pop(key, None)
        detokenizer = entry[1] if entry is not None else self._factory()
        self._entries[key] = (now, detokenizer)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return detokenizer

    def discard(self, key: Hashable) -> None:
        """Forget `key` (no error if unknown)."""
        self._entries.pop(key, None)

    def _expire(self, now: float) -> None:
        # Entries sit in last-use order, so the stale ones are all at the front.
        while self._entries:
            last_used, _ = next(iter(self._entries.values()))
            if now - last_used < self._ttl_s:
                return
            self._entries.popitem(last=False)


def decode_stream(tokenizer: TokenDecoder, chunks: Sequence[Sequence[int]]) -> list[str]:
    """Deltas for a whole chunked stream, the held-back tail flushed last (tests, tools)."""
    detokenizer = IncrementalDetokenizer(tokenizer)
    deltas = [detokenizer.push(chunk) for chunk in chunks]
    deltas.append(detokenizer.flush())
    return deltas
