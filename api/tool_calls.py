"""Tool calls: the model's ``<tool_call>{...}</tool_call>`` output as OpenAI ``tool_calls``.

The chat template (Hermes/Qwen style) asks the model to answer a tool request with one JSON
object ``{"name": ..., "arguments": {...}}`` per call, wrapped in ``<tool_call>`` tags. With
``tool_choice`` "required" or a named function, guided decoding forces that object and the
whole reply is the JSON (no tags).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedReply:
    content: str | None
    tool_calls: list[dict[str, Any]]


def parse_reply(text: str, forced: bool = False) -> ParsedReply:
    """Split a reply into free text and tool calls; malformed calls stay as text."""
    if forced:
        call = _call(text)
        return ParsedReply(None, [call]) if call else ParsedReply(text, [])
    calls = [call for match in _CALL.finditer(text) if (call := _call(match.group(1)))]
    if not calls:
        return ParsedReply(text, [])
    content = _CALL.sub("", text).strip()
    return ParsedReply(content or None, calls)


def _call(payload: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", {})
    encoded = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": value["name"], "arguments": encoded},
    }


def forced_call_schema(tools: list[dict[str, Any]], choice: str | dict[str, Any]) -> str | None:
    """The JSON Schema that guided decoding enforces for "required" or a named function."""
    functions = [tool.get("function", {}) for tool in tools if tool.get("type") == "function"]
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        functions = [f for f in functions if f.get("name") == wanted]
    elif choice != "required":
        return None
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": f.get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for f in functions
        if isinstance(f.get("name"), str)
    ]
    if not options:
        return None
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return orjson.dumps(schema).decode()
