"""A reply that may call tools, split into text and calls as it is generated.

Both the streamed and the JSON reply go through :class:`ToolCallSplitter` (the JSON one in
one piece), so they agree on every reply however its text was chunked:

- Text is passed on as it comes, except what may still open a call: a trailing part of
  ``<tool_call>`` and the whitespace before it.
- Once ``<tool_call>`` opens, everything is held until ``</tool_call>``. A well-formed
  ``{"name", "arguments"}`` payload becomes a call; anything else (malformed JSON, no closing
  tag before the end) stays text, as written.
- Whitespace right before a call is dropped, and so is whitespace after a call that only
  whitespace follows (to the next call or the end); text after a call keeps its whitespace.
- A reply with calls whose text is all dropped has ``content`` None; a reply without calls
  keeps its text exactly.
- A forced call (``tool_choice`` "required" or named: the whole reply is the guided JSON) is
  held to the end and is always a call, cut short or not (``tool_calls.forced_call``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.generation.tool_calls import ToolCall, decode_call, forced_call

OPEN, CLOSE = "<tool_call>", "</tool_call>"

Part = str | ToolCall  # a text delta, or a complete call


@dataclass(frozen=True, slots=True)
class ParsedReply:
    content: str | None
    tool_calls: list[ToolCall]


class ToolCallSplitter:
    """Feeds on a reply's text deltas; returns the parts that can be passed on so far."""

    def __init__(self, forced: bool = False, names: Sequence[str] = ()) -> None:
        self._forced = forced
        self._names = names
        self._pending = ""  # outside a call: text not passed on yet
        self._call: str | None = None  # inside a call: its text since the opening tag
        self._space_before = ""  # the whitespace dropped before the open call
        self._after_call = False  # only whitespace since the last call

    def feed(self, text: str) -> list[Part]:
        if self._forced:
            self._pending += text
            return []
        parts: list[Part] = []
        if self._call is not None:
            self._call += text
        else:
            self._pending += text
        while self._step(parts):
            pass
        return parts

    def finish(self) -> list[Part]:
        """The parts still held when the reply ends."""
        if self._forced:
            return [forced_call(self._pending, self._names)]
        parts: list[Part] = []
        if self._call is not None:  # a call that never closed stays text
            self._text(parts, self._space_before + OPEN + self._call)
        if not (self._after_call and self._pending.isspace()):
            self._text(parts, self._pending)
        self._pending, self._call = "", None
        return parts

    def whole(self, text: str) -> ParsedReply:
        """A whole reply's text and calls, exactly as its streamed parts join up."""
        return joined([*self.feed(text), *self.finish()])

    def _step(self, parts: list[Part]) -> bool:
        """Pass on what can be; True while another step may find more."""
        if self._call is None:
            return self._outside(parts)
        end = self._call.find(CLOSE)
        if end < 0:
            return False
        payload, self._pending = self._call[:end], self._call[end + len(CLOSE) :]
        self._call = None
        if (call := decode_call(payload.strip())) is not None:
            parts.append(call)
            self._after_call = True
        else:
            self._text(parts, self._space_before + OPEN + payload + CLOSE)
        return True

    def _outside(self, parts: list[Part]) -> bool:
        self._after_call = self._after_call and not self._pending.strip()
        start = self._pending.find(OPEN)
        if start >= 0:
            before = self._pending[:start]
            text = before.rstrip()
            self._text(parts, text)
            self._space_before = before[len(text) :]
            self._call, self._pending = self._pending[start + len(OPEN) :], ""
            return True
        ready = _passable(self._pending)
        self._text(parts, self._pending[:ready])
        self._pending = self._pending[ready:]
        return False

    @staticmethod
    def _text(parts: list[Part], text: str) -> None:
        if text:
            parts.append(text)


def _passable(text: str) -> int:
    """How much of ``text`` can be passed on: all but a trailing part of the opening tag and
    the whitespace before it (which is dropped if the tag completes)."""
    end = len(text)
    for size in range(min(len(OPEN) - 1, end), 0, -1):
        if text.endswith(OPEN[:size]):
            end -= size
            break
    return len(text[:end].rstrip())


def parse_reply(text: str, forced: bool = False, names: Sequence[str] = ()) -> ParsedReply:
    return ToolCallSplitter(forced, names).whole(text)


def joined(parts: Sequence[Part]) -> ParsedReply:
    content = "".join(part for part in parts if isinstance(part, str))
    calls = [part for part in parts if not isinstance(part, str)]
    return ParsedReply(content or (None if calls else content), calls)
