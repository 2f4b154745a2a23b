"""Responses input items: read from the request, given ids, turned into chat messages.

Items are kept as OpenAI's item JSON (``message``, ``function_call``,
``function_call_output``; shapes of the SDK's ``ResponseInputItem``), so a stored response,
a conversation and ``input_items`` all hold the same objects. A kind of item this deployment
cannot serve (images, files, hosted tool calls) is refused by name with its ``param``.
"""

from __future__ import annotations

from typing import Any

from api.errors import InvalidRequestError
from api.storage.conversation_items import new_item_id

Item = dict[str, Any]

_INPUT_ROLES = ("user", "system", "developer", "assistant")
_TEXT_PARTS = ("input_text", "output_text", "text")


def read_input(value: str | list[Item]) -> list[Item]:
    """The request's ``input`` as complete items with ids (a string is one user message)."""
    if isinstance(value, str):
        return [user_message(value)]
    return [_read_item(item, f"input[{index}]") for index, item in enumerate(value)]


def user_message(text: str) -> Item:
    content = [{"type": "input_text", "text": text}]
    return {"type": "message", "id": new_item_id("message"), "role": "user", "content": content}


def _read_item(item: Item, param: str) -> Item:
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _message(item, param)
    if kind == "function_call":
        call_id, name = _text(item, "call_id", param), _text(item, "name", param)
        arguments = _text(item, "arguments", param)
        return {
            "type": "function_call",
            "id": _own_id(item, "function_call"),
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": "completed",
        }
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else _parts_text(output, f"{param}.output")
        return {
            "type": "function_call_output",
            "id": _own_id(item, "function_call_output"),
            "call_id": _text(item, "call_id", param),
            "output": text,
            "status": "completed",
        }
    if kind is None:
        raise InvalidRequestError(
            f"Missing required parameter: '{param}.type'.",
            param=f"{param}.type",
            code="missing_required_parameter",
        )
    raise InvalidRequestError(
        f"Input items of type {str(kind)[:64]!r} are not supported by this deployment; send "
        "message, function_call and function_call_output items.",
        param=f"{param}.type",
        code="unsupported_parameter",
    )


def _message(item: Item, param: str) -> Item:
    role = item.get("role")
    if role not in _INPUT_ROLES:
        raise InvalidRequestError(
            f"Invalid value for '{param}.role': use one of {', '.join(_INPUT_ROLES)}.",
            param=f"{param}.role",
            code="invalid_value",
        )
    content = item.get("content")
    text = content if isinstance(content, str) else _parts_text(content, f"{param}.content")
    part = "output_text" if role == "assistant" else "input_text"
    parts: list[Item] = [{"type": part, "text": text}]
    if role == "assistant":
        parts[0]["annotations"] = []
    return {
        "type": "message",
        "id": _own_id(item, "message"),
        "role": role,
        "content": parts,
        "status": "completed",
    }


def _parts_text(parts: object, param: str) -> str:
    if not isinstance(parts, list):
        raise InvalidRequestError(
            f"Invalid value for '{param}': a string or a list of content parts.",
            param=param,
            code="invalid_value",
        )
    texts = []
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _TEXT_PARTS or not isinstance(part.get("text"), str):
            raise InvalidRequestError(
                f"Content parts of type {str(kind)[:64]!r} are not supported: this model "
                "reads text only (input_text parts).",
                param=f"{param}[{index}]",
                code="unsupported_parameter",
            )
        texts.append(part["text"])
    return "".join(texts)


def _text(item: Item, name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"Missing required parameter: '{param}.{name}'.",
            param=f"{param}.{name}",
            code="missing_required_parameter",
        )
    return value


def _own_id(item: Item, kind: str) -> str:
    given = item.get("id")
    return given if isinstance(given, str) and given else new_item_id(kind)


def item_text(item: Item) -> str:
    """The text an item puts in the prompt (for the context estimate)."""
    if item["type"] == "message":
        return "".join(part.get("text", "") for part in item["content"])
    if item["type"] == "function_call":
        return f"{item['name']}{item['arguments']}"
    return str(item.get("output", ""))


def chat_messages(instructions: str | None, items: list[Item]) -> list[dict[str, Any]]:
    """The chat messages of ``items``: consecutive function calls are one assistant message
    with ``tool_calls``, a call's output a ``tool`` message, as the chat template expects."""
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": item_text(item)})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls"):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
    return messages
