"""Pure translation of OpenAI requests into backend requests; the input is never modified."""

from __future__ import annotations

from typing import Any

import orjson

from api.backend.types import GenerationRequest, SamplingParams
from api.errors import ContextLengthExceededError, InvalidRequestError
from api.generation.tool_calls import forced_call_schema
from api.schemas.bounds import first_excess, schema_counts, text_bytes
from api.schemas.chat import ChatCompletionRequest, ChatMessage, ImageContentPart
from api.schemas.common import SamplingOptions
from api.schemas.completions import CompletionRequest
from api.settings import ServedModel


def chat_to_generation(
    body: ChatCompletionRequest, model: ServedModel, request_id: str
) -> GenerationRequest:
    """The ensemble request for a chat completion; unsupported options are refused here."""
    refuse(_unsupported_chat_options(body), model)
    requested = body.max_completion_tokens or body.max_tokens
    max_tokens = requested or model.default_max_tokens
    check_limits(body, model, _budget_param(body), max_tokens)
    guide_type, guide = guide_for(body.response_format)
    tools_json, forced_call = tool_setup(body)
    if forced_call is not None:
        guide_type, guide = "json_schema", forced_call
    if guide is not None:
        check_guide(guide, model, "tools" if forced_call is not None else "response_format")
    # The tools are part of the prompt where the model's chat template renders them.
    rendered_tools = body.tools if model.supports_tools and tools_json is not None else None
    check_prompt_bytes(
        text_bytes([_message_texts(body.messages), rendered_tools]), model, "messages"
    )
    top_logprobs = (body.top_logprobs or 0) if body.logprobs else 0
    check_top_logprobs(top_logprobs, model, "top_logprobs")
    params = sampling_params(
        body,
        max_tokens,
        return_log_probs=body.logprobs,
        top_logprobs=top_logprobs,
        guide_type=guide_type,
        guide=guide,
        # Without a budget of the client's, the default is cut to what fits after the prompt
        # (as vLLM does) instead of failing with a context error the client never asked for.
        fit_context=None if requested else model.context_length,
    )
    return GenerationRequest(
        request_id=request_id,
        triton_model=model.triton_model,
        params=params,
        messages_json=messages_json(body.messages),
        tools_json=tools_json,
        forced_tool_call=forced_call is not None,
        named_tool_call=forced_call is not None and isinstance(body.tool_choice, dict),
    )


def guide_for(response_format: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """OpenAI's response_format as TensorRT-LLM's guided-decoding guide."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None, None
    if kind == "json_object":
        return "json_schema", '{"type": "object"}'
    if kind == "json_schema":
        spec = (response_format or {}).get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequestError(
                "response_format.json_schema.schema must be a JSON Schema object.",
                param="response_format",
            )
        return "json_schema", orjson.dumps(schema).decode()
    raise InvalidRequestError(
        f"Unknown response_format type {kind!r}; use text, json_object or json_schema.",
        param="response_format",
    )


def completion_to_generations(
    body: CompletionRequest, model: ServedModel, request_id: str
) -> list[GenerationRequest]:
    """One ensemble request per prompt; ``fan_out`` gives each choice its own id."""
    refuse(_unsupported_completion_options(body), model)
    check_limits(body, model, "max_tokens", body.max_tokens)
    check_top_logprobs(body.logprobs or 0, model, "logprobs")
    prompts = prompt_texts(body)
    for prompt in prompts:
        check_prompt_bytes(text_bytes(prompt), model, "prompt")
    params = sampling_params(
        body,
        body.max_tokens,
        return_log_probs=body.logprobs is not None,
        top_logprobs=body.logprobs or 0,
    )
    return [
        GenerationRequest(
            request_id=request_id,
            triton_model=model.triton_model,
            params=params,
            prompt=prompt,
        )
        for prompt in prompts
    ]


def check_limits(body: SamplingOptions, model: ServedModel, param: str, max_tokens: int) -> None:
    """What only the served model bounds: the completion budget (the prompt needs at least one
    token of the context), ``min_tokens`` within it, ``logit_bias`` ids in the vocabulary."""
    if max_tokens > model.context_length - 1:
        raise InvalidRequestError(
            f"'{param}' is too large: {max_tokens}. This model's maximum context length is "
            f"{model.context_length} tokens and the prompt takes at least one, so at most "
            f"{model.context_length - 1} completion tokens are possible.",
            param=param,
            code="invalid_value",
        )
    if body.min_tokens is not None and body.min_tokens > max_tokens:
        raise InvalidRequestError(
            f"'min_tokens' ({body.min_tokens}) must not exceed the completion budget "
            f"({max_tokens}).",
            param="min_tokens",
            code="invalid_value",
        )
    # Unknown vocabulary (None): the model refuses an id outside it (invalid_logit_bias, a 400).
    vocab = model.vocab_size
    if vocab is None:
        return
    for key in body.logit_bias or {}:
        if int(key) >= vocab:
            raise InvalidRequestError(
                f"logit_bias token id {key} is not in the vocabulary of '{model.id}' "
                f"(ids 0 to {vocab - 1}).",
                param="logit_bias",
                code="invalid_value",
            )


def check_top_logprobs(requested: int, model: ServedModel, param: str) -> None:
    """Refuse more alternatives per token than the deployment offers (``max_top_logprobs``)."""
    limit = model.max_top_logprobs
    if requested <= limit:
        return
    offered = (
        f"at most {limit}" if limit else "none (its engine was built without generation logits)"
    )
    raise InvalidRequestError(
        f"'{param}' is too large: {requested}. Model '{model.id}' offers {offered} "
        "top log probabilities per token.",
        param=param,
        code="invalid_value",
    )


def check_prompt_bytes(size: int, model: ServedModel, param: str) -> None:
    """Refuse a prompt with more UTF-8 bytes than any prompt that fits the context, before
    Triton spends tokenizer time and memory on it (``ServedModel.prompt_byte_limit``)."""
    limit = model.prompt_byte_limit
    if size > limit:
        raise ContextLengthExceededError(
            f"This model's maximum context length is {model.context_length} tokens, which no "
            f"prompt of more than {limit} bytes fits. However, you sent {size} bytes in the "
            f"{param}. Please reduce the length of the {param}.",
            param=param,
        )


def _message_texts(messages: list[ChatMessage]) -> list[object]:
    """Every string of the messages the chat template renders."""
    return [[m.role, m.text(), m.name, m.tool_call_id, m.tool_calls] for m in messages]


def check_guide(guide: str, model: ServedModel, param: str) -> None:
    """Refuse a schema past the model's guided-decoding limits (its compile time grows with
    size, properties, alternatives and enum values); the engine checks them again."""
    limits = model.guided_decoding
    what = "tool schema" if param == "tools" else "response_format schema"
    size = len(guide.encode("utf-8"))
    if size > limits.max_guide_bytes:
        raise InvalidRequestError(
            f"The {what} is {size} bytes; this model compiles at most "
            f"{limits.max_guide_bytes} bytes for guided decoding.",
            param=param,
            code="schema_too_complex",
        )
    counts = schema_counts(orjson.loads(guide))
    excess = first_excess(
        counts, limits.max_properties, limits.max_alternatives, limits.max_enum_values
    )
    if excess is not None:
        name, count, limit = excess
        raise InvalidRequestError(
            f"The {what} has {count} {name}; this model compiles at most {limit} for "
            "guided decoding.",
            param=param,
            code="schema_too_complex",
        )


def _budget_param(body: ChatCompletionRequest) -> str:
    """The parameter that set a chat's completion budget, as the client named it."""
    return "max_completion_tokens" if body.max_completion_tokens is not None else "max_tokens"


def prompt_texts(body: CompletionRequest) -> list[str]:
    if isinstance(body.prompt, str):
        return [body.prompt]
    if body.prompt and all(isinstance(item, str) for item in body.prompt):
        return [str(item) for item in body.prompt]
    if not body.prompt:
        raise InvalidRequestError("'prompt' must not be empty.", param="prompt")
    raise InvalidRequestError(
        "Token-id prompts are not supported by this deployment; send text.",
        param="prompt",
        code="unsupported_parameter",
    )


def sampling_params(
    body: SamplingOptions,
    max_tokens: int,
    return_log_probs: bool = False,
    top_logprobs: int = 0,
    guide_type: str | None = None,
    guide: str | None = None,
    fit_context: int | None = None,
) -> SamplingParams:
    # Built once with every field: dataclasses.replace on top cost a visible share of a
    # chat request's translation.
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=max(body.top_k or 0, 0),
        seed=body.seed,
        min_tokens=body.min_tokens or 0,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        repetition_penalty=1.0 if body.repetition_penalty is None else body.repetition_penalty,
        stop=tuple(body.stop_list()),
        logit_bias=tuple((int(token), bias) for token, bias in (body.logit_bias or {}).items()),
        return_log_probs=return_log_probs,
        top_logprobs=top_logprobs,
        guide_type=guide_type,
        guide=guide,
        fit_context=fit_context,
    )


def messages_json(messages: list[ChatMessage]) -> str:
    """The messages as the chat template expects them: role, text, and tool-call fields."""
    rendered = []
    for m in messages:
        item: dict[str, Any] = {
            "role": "system" if m.role == "developer" else m.role,
            "content": m.text(),
        }
        if m.tool_calls:
            item["tool_calls"] = m.tool_calls
        if m.tool_call_id is not None:
            item["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            item["name"] = m.name
        rendered.append(item)
    return orjson.dumps(rendered).decode("utf-8")


def tool_setup(body: ChatCompletionRequest) -> tuple[str | None, str | None]:
    """(tools JSON for the template, JSON Schema forcing a call) for this request."""
    if not body.tools or body.tool_choice == "none":
        return None, None
    forced = None
    if body.tool_choice not in (None, "auto"):
        forced = forced_call_schema(body.tools, body.tool_choice)
        if forced is None:
            raise InvalidRequestError(
                "tool_choice names no function among 'tools'.",
                param="tool_choice",
                code="invalid_value",
            )
    return orjson.dumps(body.tools).decode(), forced


def refuse(unsupported: list[tuple[str, str]], model: ServedModel) -> None:
    """A known option this deployment cannot honour is a 400, never silently ignored."""
    if unsupported:
        param, reason = unsupported[0]
        raise InvalidRequestError(
            f"'{param}' is not supported by the model '{model.id}': {reason}.",
            param=param,
            code="unsupported_parameter",
        )


def _unsupported_chat_options(body: ChatCompletionRequest) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    # The deprecated functions API is refused, not mapped: its replies (message.function_call,
    # finish_reason "function_call") differ from tool calls, which clients would not read.
    if body.functions is not None:
        found.append(("functions", "the deprecated functions API is not served; use 'tools'"))
    if body.function_call is not None:
        found.append(
            ("function_call", "the deprecated functions API is not served; use 'tool_choice'")
        )
    if body.modalities is not None and any(m != "text" for m in body.modalities):
        found.append(("modalities", "the model produces text only"))
    if body.audio is not None:
        found.append(("audio", "the model produces text only"))
    if body.prediction is not None:
        found.append(("prediction", "predicted outputs are not implemented"))
    if body.web_search_options is not None:
        found.append(("web_search_options", "the model has no web search"))
    for index, message in enumerate(body.messages):
        if isinstance(message.content, list) and any(
            isinstance(part, ImageContentPart) for part in message.content
        ):
            found.append((f"messages[{index}].content", "the model accepts text only"))
    return found


def _unsupported_completion_options(body: CompletionRequest) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if body.suffix:
        found.append(("suffix", "the model has no fill-in-the-middle support"))
    if body.best_of is not None and body.best_of != body.n:
        found.append(("best_of", "server-side ranking of candidates is not implemented"))
    return found
