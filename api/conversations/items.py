"""A client's input items, checked and put in the shape they are stored and shown in.

The items are those of the Responses API's input (openai 3.63.0's ``ResponseInputItemParam``)
that a text model can use: ``message`` (a string or a list of text parts; the ``type`` may be
left out, as in ``EasyInputMessage``), ``function_call`` and ``function_call_output``. Other
types (images, files, tool calls of hosted tools, item references) are refused by name, with
the ``param`` path of the offending field (``items[3].content[0].type``). Unknown keys are
ignored, as everywhere in this API. A stored message's string content becomes one part:
``output_text`` for the assistant, ``input_text`` for the others, as OpenAI shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.errors import InvalidRequestError

MAX_ITEMS = 20
MAX_ID_CHARS = 64
ROLES = ("user", "assistant", "system", "developer")
STATUSES = ("in_progress", "completed", "incomplete")
PHASES = ("commentary", "final_answer")


def input_items(
    raw: Any, param: str = "items", *, at_least_one: bool = False
) -> list[dict[str, Any]]:
    """``raw`` (a JSON array of at most 20 items) as items to store, without ids unless given."""
    if not isinstance(raw, list):
        raise _invalid(param, "expected an array of items")
    if len(raw) > MAX_ITEMS:
        raise _invalid(
            param,
            f"at most {MAX_ITEMS} items may be added at a time, got {len(raw)}",
            code="array_above_max_length",
        )
    if at_least_one and not raw:
        raise _invalid(param, "expected at least one item", code="empty_array")
    return [input_item(entry, f"{param}[{index}]") for index, entry in enumerate(raw)]


def input_item(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _invalid(param, "expected an object")
    kind = raw.get("type", "message" if "role" in raw else None)
    if kind is None:
        raise _missing(f"{param}.type")
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise _invalid(
            f"{param}.type",
            f"item type {kind!r} is not supported here; supported: {', '.join(_PARSERS)}",
            code="unsupported_value",
        )
    item = {"type": kind, **_id(raw, param)}
    item["status"] = _choice(raw, "status", param, STATUSES, default="completed")
    item.update(parse(raw, param))
    return item


def message_text(item: dict[str, Any]) -> str:
    """The text of a stored message (its text parts joined; a refusal counts as text)."""
    return "".join(
        part.get("text") or part.get("refusal") or "" for part in item.get("content", [])
    )


def _message(raw: dict[str, Any], param: str) -> dict[str, Any]:
    role = _choice(raw, "role", param, ROLES)
    content = raw.get("content")
    if isinstance(content, str):
        parts = [text_part(role, content)]
    elif isinstance(content, list):
        parts = [
            _part(part, role, f"{param}.content[{index}]") for index, part in enumerate(content)
        ]
    elif content is None:
        raise _missing(f"{param}.content")
    else:
        raise _invalid(f"{param}.content", "expected a string or an array of content parts")
    fields: dict[str, Any] = {"role": role, "content": parts}
    if raw.get("phase") is not None:
        fields["phase"] = _choice(raw, "phase", param, PHASES)
    return fields


def text_part(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def _part(raw: Any, role: str, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _invalid(param, "expected a content part object")
    kind = raw.get("type")
    if kind == "input_text":
        return {"type": "input_text", "text": _string(raw, "text", param)}
    if kind in ("output_text", "refusal") and role == "assistant":
        if kind == "refusal":
            return {"type": "refusal", "refusal": _string(raw, "refusal", param)}
        annotations = raw.get("annotations", [])
        if not isinstance(annotations, list):
            raise _invalid(f"{param}.annotations", "expected an array")
        return {
            "type": "output_text",
            "text": _string(raw, "text", param),
            "annotations": annotations,
        }
    allowed = "input_text, output_text, refusal" if role == "assistant" else "input_text"
    raise _invalid(
        f"{param}.type",
        f"content type {kind!r} is not supported in a {role} message here; supported: {allowed}",
        code="unsupported_value",
    )


def _function_call(raw: dict[str, Any], param: str) -> dict[str, Any]:
    return {
        "call_id": _string(raw, "call_id", param),
        "name": _string(raw, "name", param),
        "arguments": _string(raw, "arguments", param),
    }


def _function_call_output(raw: dict[str, Any], param: str) -> dict[str, Any]:
    output = raw.get("output")
    if isinstance(output, list):
        output = [
            {"type": "input_text", "text": _string(part, "text", f"{param}.output[{index}]")}
            if isinstance(part, dict) and part.get("type") == "input_text"
            else _refuse_output_part(f"{param}.output[{index}]")
            for index, part in enumerate(output)
        ]
    elif output is None:
        raise _missing(f"{param}.output")
    elif not isinstance(output, str):
        raise _invalid(f"{param}.output", "expected a string or an array of input_text parts")
    return {"call_id": _string(raw, "call_id", param), "output": output}


def _refuse_output_part(param: str) -> dict[str, Any]:
    raise _invalid(f"{param}.type", "only input_text parts are supported", code="unsupported_value")


_PARSERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "message": _message,
    "function_call": _function_call,
    "function_call_output": _function_call_output,
}


def _id(raw: dict[str, Any], param: str) -> dict[str, str]:
    value = raw.get("id")
    if value is None:
        return {}
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise _invalid(f"{param}.id", f"expected a string of 1 to {MAX_ID_CHARS} characters")
    return {"id": value}


def _string(raw: dict[str, Any], name: str, param: str) -> str:
    value = raw.get(name)
    if value is None:
        raise _missing(f"{param}.{name}")
    if not isinstance(value, str):
        raise _invalid(f"{param}.{name}", "expected a string")
    return value


def _choice(
    raw: dict[str, Any], name: str, param: str, allowed: tuple[str, ...], default: str | None = None
) -> str:
    value = raw.get(name, default)
    if value is None:
        raise _missing(f"{param}.{name}")
    if value not in allowed:
        raise _invalid(f"{param}.{name}", f"expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {message}.", param=param, code=code)


def _missing(param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )
