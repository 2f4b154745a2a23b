"""Tool calls: the model's ``<tool_call>{...}</tool_call>`` output as OpenAI ``tool_calls``.

The chat template (Hermes/Qwen style) asks the model to answer a tool request with one JSON
object ``{"name": ..., "arguments": {...}}`` per call, wrapped in ``<tool_call>`` tags. With
``tool_choice`` "required" or a named function, guided decoding forces that object and the
whole reply is the JSON (no tags). ``tool_stream`` splits a reply into text and calls.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

ToolCall = dict[str, Any]

# The start of a forced call as guided decoding writes it, cut anywhere: the name (complete or
# not) and whatever of the arguments' JSON text was generated.
_FORCED = re.compile(
    r'\s*\{\s*"name"\s*:\s*"(?P<name>(?:[^"\\]|\\.)*)(?P<closed>"?)'
    r'(?:\s*,\s*"arguments"\s*:\s*(?P<arguments>.*))?',
    re.DOTALL,
)


def decode_call(payload: str) -> ToolCall | None:
    """The call a complete ``{"name", "arguments"}`` object stands for; None if malformed."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", {})
    encoded = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    return new_call(value["name"], encoded)


def new_call(name: str, arguments: str) -> ToolCall:
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def forced_call(text: str, names: Sequence[str]) -> ToolCall:
    """A forced reply as its call, complete or cut short (``max_tokens``, a stop sequence).

    A cut call keeps the arguments' JSON text as generated (OpenAI and vLLM do the same); its
    name is the one function among ``names`` that the generated part of the name can still
    become (guided decoding allows nothing else), or that part itself when several can.
    """
    if (call := decode_call(text)) is not None:
        return call
    match = _FORCED.match(text)
    name = _unescape(match.group("name")) if match else ""
    if not (match and match.group("closed")):
        candidates = [option for option in names if option.startswith(name)]
        name = candidates[0] if len(candidates) == 1 else name
    arguments = (match.group("arguments") or "") if match else ""
    return new_call(name, arguments)


def _unescape(raw: str) -> str:
    """A JSON string's text, cut anywhere (a dangling escape is dropped)."""
    for end in range(len(raw), max(len(raw) - 6, 0) - 1, -1):
        try:
            decoded: str = orjson.loads(f'"{raw[:end]}"')
        except orjson.JSONDecodeError:
            continue
        return decoded
    return raw


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


def forced_names(schema: str | None) -> list[str]:
    """The function names a schema of :func:`forced_call_schema` allows."""
    if schema is None:
        return []
    try:
        parsed = orjson.loads(schema)
    except orjson.JSONDecodeError:
        return []
    options = parsed.get("anyOf", [parsed]) if isinstance(parsed, dict) else []
    names = [option.get("properties", {}).get("name", {}).get("const") for option in options]
    return [name for name in names if isinstance(name, str)]
