"""A Responses request as the chat completion the generation pipeline runs.

The Responses API's flat function tools, ``tool_choice``, ``text.format`` and
``max_output_tokens`` map onto their chat counterparts; everything it offers that this
deployment cannot do (hosted tools, reasoning, prompt templates...) is refused by name. Errors
the chat pipeline raises name chat parameters; ``responses_param`` gives their Responses names.
"""

from __future__ import annotations

from typing import Any, Final

from api.errors import APIError, InvalidRequestError
from api.http.request_body import validate_payload
from api.responses.items import Item, chat_messages
from api.schemas.chat import ChatCompletionRequest
from api.schemas.responses import CreateResponse

# Includable values (SDK ``ResponseIncludable``): logprobs are honoured; the others concern
# tools or inputs this deployment refuses anyway, so there is nothing to add for them.
INCLUDABLE: Final = frozenset(
    {
        "message.output_text.logprobs",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "reasoning.encrypted_content",
        "code_interpreter_call.outputs",
    }
)
_CHAT_TO_RESPONSES: Final = {
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "response_format": "text.format",
    "messages": "input",
    "top_logprobs": "top_logprobs",
}
_TOOL_CHOICE_MODES: Final = ("none", "auto", "required")


def chat_request(body: CreateResponse, history: list[Item], stream: bool) -> ChatCompletionRequest:
    """The chat completion that generates ``body``'s response after ``history``."""
    refuse_unsupported(body)
    payload: dict[str, Any] = {
        "model": body.model,
        "messages": chat_messages(body.instructions, history),
        "stream": stream,
    }
    optional = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_completion_tokens": body.max_output_tokens,
        "user": body.user,
        "parallel_tool_calls": body.parallel_tool_calls,
        "response_format": response_format(body.text),
        "tools": chat_tools(body.tools),
        "tool_choice": chat_tool_choice(body.tool_choice) if body.tools else None,
    }
    payload.update({name: value for name, value in optional.items() if value is not None})
    if wants_logprobs(body):
        payload["logprobs"] = True
        payload["top_logprobs"] = body.top_logprobs or 0
    if not payload["messages"]:
        raise InvalidRequestError(
            "The request has no input: send 'input' (or 'instructions').",
            param="input",
            code="missing_required_parameter",
        )
    try:
        return validate_payload(payload, ChatCompletionRequest)
    except APIError as exc:
        raise renamed(exc) from None


def wants_logprobs(body: CreateResponse) -> bool:
    return "message.output_text.logprobs" in (body.include or [])


def renamed(exc: APIError) -> APIError:
    """``exc`` naming the Responses parameter where the chat pipeline named its own."""
    if exc.param is None:
        return exc
    head, dot, rest = exc.param.partition(".")
    head, bracket, index = head.partition("[")
    name = _CHAT_TO_RESPONSES.get(head)
    if name is None:
        return exc
    exc.param = name + (bracket + index if name != "input" else "") + dot + rest
    for old in (f"'{head}'", head):
        if old in exc.message:
            exc.message = exc.message.replace(old, f"'{name}'" if old.startswith("'") else name)
            break
    return exc


def refuse_unsupported(body: CreateResponse) -> None:
    """A known parameter this deployment cannot honour is a 400 naming it, never ignored."""
    refused = [
        ("reasoning", body.reasoning is not None, "the model does not reason"),
        ("prompt", body.prompt is not None, "stored prompt templates are not served"),
        ("max_tool_calls", body.max_tool_calls is not None, "only function tools are served"),
        ("context_management", bool(body.context_management), "compaction is not served"),
        ("moderation", body.moderation is not None, "use the deployment's content filter"),
        ("background_options", body.background_options is not None, "not served"),
    ]
    for param, present, reason in refused:
        if present:
            _refuse(param, reason)
    for index, name in enumerate(body.include or []):
        if name not in INCLUDABLE:
            raise InvalidRequestError(
                f"Invalid value for 'include[{index}]': {name[:64]!r} is not includable.",
                param=f"include[{index}]",
                code="invalid_value",
            )
    if body.top_logprobs and not wants_logprobs(body):
        # OpenAI returns them only with the include; asking for both is how it is done.
        _refuse("top_logprobs", "add 'message.output_text.logprobs' to 'include'")
    verbosity = (body.text or {}).get("verbosity")
    if verbosity not in (None, "medium"):
        _refuse("text.verbosity", "the model has one verbosity")


def _refuse(param: str, reason: str) -> None:
    raise InvalidRequestError(
        f"'{param}' is not supported by this deployment: {reason}.",
        param=param,
        code="unsupported_parameter",
    )


def chat_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Responses function tools (flat) as chat tools; hosted tools are refused by name."""
    if not tools:
        return None
    converted = []
    for index, tool in enumerate(tools):
        kind = tool.get("type")
        if kind != "function":
            raise InvalidRequestError(
                f"Tools of type {str(kind)[:64]!r} are not supported by this deployment; only "
                "function tools are.",
                param=f"tools[{index}].type",
                code="unsupported_parameter",
            )
        function = {
            key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool
        }
        converted.append({"type": "function", "function": function})
    return converted


def chat_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        if choice is not None and choice not in _TOOL_CHOICE_MODES:
            raise InvalidRequestError(
                f"Invalid value for 'tool_choice': use one of {', '.join(_TOOL_CHOICE_MODES)} "
                "or a function.",
                param="tool_choice",
                code="invalid_value",
            )
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidRequestError(
        f"tool_choice of type {str(choice.get('type'))[:64]!r} is not supported; use none, "
        "auto, required or {'type': 'function', 'name': ...}.",
        param="tool_choice",
        code="unsupported_parameter",
    )


def response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """``text.format`` as the chat ``response_format``."""
    spec = (text or {}).get("format")
    if spec is None:
        return None
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        assert isinstance(spec, dict)
        if not isinstance(spec.get("schema"), dict) or not isinstance(spec.get("name"), str):
            raise InvalidRequestError(
                "text.format of type json_schema needs a 'name' and a 'schema' object.",
                param="text.format",
                code="invalid_value",
            )
        schema = {
            key: spec[key] for key in ("name", "schema", "strict", "description") if key in spec
        }
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequestError(
        "Invalid value for 'text.format.type': use text, json_object or json_schema.",
        param="text.format.type",
        code="invalid_value",
    )
