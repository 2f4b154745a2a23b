"""A response's output items as the model writes them, and the stream events that say so.

One builder serves the streamed and the JSON reply (the JSON one only drops the events), so
both carry the same items. Event shapes and order follow the SDK's ``ResponseStreamEvent``
union (openai 3.63.0): a message item opens with ``output_item.added`` and
``content_part.added``, grows by ``output_text.delta`` and closes with ``output_text.done``,
``content_part.done`` and ``output_item.done``; a function call is added, its arguments sent
in one delta, then done.
"""

from __future__ import annotations

from typing import Any

from api.generation.tool_calls import ToolCall
from api.generation.tool_stream import Part
from api.responses.items import Item
from api.storage.conversation_items import new_item_id

Event = dict[str, Any]


class OutputBuilder:
    """Collects the output items of one reply; every method returns the events it implies."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self._message: Item | None = None
        self._text: list[str] = []
        self._logprobs: list[dict[str, Any]] = []

    def feed(self, parts: list[Part], logprobs: list[dict[str, Any]] | None = None) -> list[Event]:
        events: list[Event] = []
        for part in parts:
            if isinstance(part, str):
                if part:
                    events += self._delta(part, logprobs or [])
                    logprobs = None
            else:
                events += self._close_message()
                events += self._call(part)
        return events

    def finish(self, status: str) -> list[Event]:
        """Close what is open; a reply that wrote nothing still has its (empty) message."""
        if not self.items:
            events = self._open_message()
            return events + self._close_message(status)
        return self._close_message(status)

    def text(self) -> str:
        """The reply's text (``output_text`` of the SDK)."""
        return "".join(
            part["text"]
            for item in self.items
            if item["type"] == "message"
            for part in item["content"]
        )

    def _open_message(self) -> list[Event]:
        message: Item = {
            "id": new_item_id("message"),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self._message, self._text, self._logprobs = message, [], []
        self.items.append(message)
        index = len(self.items) - 1
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            {"type": "response.output_item.added", "output_index": index, "item": dict(message)},
            {
                "type": "response.content_part.added",
                "item_id": message["id"],
                "output_index": index,
                "content_index": 0,
                "part": part,
            },
        ]

    def _delta(self, text: str, logprobs: list[dict[str, Any]]) -> list[Event]:
        events = self._open_message() if self._message is None else []
        assert self._message is not None
        self._text.append(text)
        self._logprobs.extend(logprobs)
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": self._message["id"],
                "output_index": len(self.items) - 1,
                "content_index": 0,
                "delta": text,
                "logprobs": logprobs,
            }
        )
        return events

    def _close_message(self, status: str = "completed") -> list[Event]:
        message = self._message
        if message is None:
            return []
        self._message = None
        index = self.items.index(message)
        text = "".join(self._text)
        part = {
            "type": "output_text",
            "text": text,
            "annotations": [],
            "logprobs": self._logprobs,
        }
        message["content"] = [part]
        message["status"] = "incomplete" if status == "incomplete" else "completed"
        where = {"item_id": message["id"], "output_index": index, "content_index": 0}
        return [
            {
                "type": "response.output_text.done",
                **where,
                "text": text,
                "logprobs": part["logprobs"],
            },
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": index, "item": message},
        ]

    def _call(self, call: ToolCall) -> list[Event]:
        function = call["function"]
        item: Item = {
            "id": new_item_id("function_call"),
            "type": "function_call",
            "status": "in_progress",
            "call_id": call["id"],
            "name": function["name"],
            "arguments": "",
        }
        self.items.append(item)
        index = len(self.items) - 1
        arguments = function["arguments"]
        added = {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
        item.update(arguments=arguments, status="completed")
        where = {"item_id": item["id"], "output_index": index}
        return [
            added,
            {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
            {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
