"""Pure translation of OpenAI requests into backend requests; the input is never modified."""

from __future__ import annotations

import orjson

from api.backend.types import GenerationRequest, SamplingParams
from api.errors import InvalidRequestError
from api.schemas.chat import ChatCompletionRequest, ChatMessage, ImageContentPart
from api.schemas.common import SamplingOptions
from api.schemas.completions import CompletionRequest
from api.settings import ServedModel


def chat_to_generation(
    body: ChatCompletionRequest, model: ServedModel, request_id: str
) -> GenerationRequest:
    """The ensemble request for a chat completion; unsupported options are refused here."""
    refuse(_unsupported_chat_options(body), model)
    max_tokens = body.max_completion_tokens or body.max_tokens or model.default_max_tokens
    return GenerationRequest(
        request_id=request_id,
        triton_model=model.triton_model,
        params=sampling_params(body, max_tokens),
        messages_json=messages_json(body.messages),
        stream=body.stream,
    )


def completion_to_generations(
    body: CompletionRequest, model: ServedModel, request_id: str
) -> list[GenerationRequest]:
    """One ensemble request per prompt; ``fan_out`` gives each choice its own id."""
    refuse(_unsupported_completion_options(body), model)
    params = sampling_params(body, body.max_tokens)
    return [
        GenerationRequest(
            request_id=request_id,
            triton_model=model.triton_model,
            params=params,
            prompt=prompt,
            stream=body.stream,
        )
        for prompt in prompt_texts(body)
    ]


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


def sampling_params(body: SamplingOptions, max_tokens: int) -> SamplingParams:
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
    )


def messages_json(messages: list[ChatMessage]) -> str:
    """The messages as the chat template expects them: role and plain-text content."""
    rendered = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in messages
    ]
    return orjson.dumps(rendered).decode("utf-8")


def refuse(unsupported: list[tuple[str, str]], model: ServedModel) -> None:
    """A known option this deployment cannot honour is a 400, never silently ignored."""
    if unsupported:
        param, reason = unsupported[0]
        raise InvalidRequestError(
            f"'{param}' is not supported by the model '{model.id}': {reason}.",
            param=param,
            code="unsupported_parameter",
        )


def _unsupported_sampling_options(body: SamplingOptions) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if body.logit_bias:
        found.append(("logit_bias", "logit bias is not applied yet"))
    return found


def _unsupported_chat_options(body: ChatCompletionRequest) -> list[tuple[str, str]]:
    found = _unsupported_sampling_options(body)
    if body.logprobs or body.top_logprobs:
        found.append(("logprobs", "log probabilities are not returned yet"))
    if body.response_format and body.response_format.get("type", "text") != "text":
        found.append(("response_format", "structured output is not enforced yet"))
    if body.tools and body.tool_choice != "none":
        found.append(("tools", "tool calling is not parsed yet"))
    for index, message in enumerate(body.messages):
        if isinstance(message.content, list) and any(
            isinstance(part, ImageContentPart) for part in message.content
        ):
            found.append((f"messages[{index}].content", "the model accepts text only"))
    return found


def _unsupported_completion_options(body: CompletionRequest) -> list[tuple[str, str]]:
    found = _unsupported_sampling_options(body)
    if body.suffix:
        found.append(("suffix", "the model has no fill-in-the-middle support"))
    if body.logprobs is not None:
        found.append(("logprobs", "log probabilities are not returned yet"))
    if body.best_of is not None and body.best_of != body.n:
        found.append(("best_of", "server-side ranking of candidates is not implemented"))
    return found
