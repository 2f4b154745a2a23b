"""`/v1/chat/completions` request and response shapes (OpenAI's Chat Completions API)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from api.schemas.bounds import INT32_MAX, check_json_bounds
from api.schemas.common import FinishReason, LenientModel, SamplingOptions, Usage, rule_error

# OpenAI's rule for function and response-format names.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_CHOICES: Final = ("none", "auto", "required")
RESPONSE_FORMATS: Final = ("text", "json_object", "json_schema")


class TextContentPart(LenientModel):
    type: Literal["text"]
    text: str


class ImageContentPart(LenientModel):
    type: Literal["image_url"]
    image_url: dict[str, Any]


ContentPart = Annotated[TextContentPart | ImageContentPart, Field(discriminator="type")]


class ChatMessage(LenientModel):
    """One message of the conversation; ``content`` is a string or a list of parts."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    @field_validator("tool_calls")
    @classmethod
    def _bounded_calls(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        check_json_bounds(value)
        return value

    @model_validator(mode="after")
    def _tool_result_names_its_call(self) -> Self:
        if self.role == "tool" and self.tool_call_id is None:
            raise rule_error("tool_call_id", "a tool message needs a tool_call_id", "missing")
        return self

    def text(self) -> str:
        """The message's text: parts joined; other part types are refused upstream."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextContentPart))


class ChatCompletionRequest(SamplingOptions):
    """The request body; defaults are OpenAI's."""

    messages: list[ChatMessage] = Field(min_length=1)
    # The engine takes INT32; the model's context bounds them further (api.generation.translate).
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    # OpenAI's limit: 128 functions.
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    # Known OpenAI parameters this deployment refuses by name (generation.translate): the deprecated
    # functions API (use tools), audio, predicted outputs and web search.
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None

    @field_validator("tools")
    @classmethod
    def _tool_definitions(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        check_json_bounds(value)
        for index, tool in enumerate(value or []):
            function = tool.get("function")
            if tool.get("type") != "function" or not isinstance(function, dict):
                raise ValueError(f"tools[{index}] must be a function tool (type 'function')")
            if not _is_name(function.get("name")):
                raise ValueError(f"tools[{index}].function.name must match {_NAME.pattern}")
            if not isinstance(function.get("parameters", {}), dict | None):
                raise ValueError(f"tools[{index}].function.parameters must be a JSON Schema")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        check_json_bounds(value)
        if isinstance(value, str) and value not in TOOL_CHOICES:
            raise ValueError(f"tool_choice must be one of {', '.join(TOOL_CHOICES)} or a function")
        if isinstance(value, dict):
            function = value.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if value.get("type") != "function" or not isinstance(name, str):
                raise ValueError(
                    "a named tool_choice is {'type': 'function', 'function': {'name': ...}}"
                )
        return value

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        check_json_bounds(value)
        kind = value.get("type")
        if kind not in RESPONSE_FORMATS:
            raise ValueError(f"type must be one of {', '.join(RESPONSE_FORMATS)}")
        spec = value.get("json_schema")
        if kind == "json_schema":
            if not isinstance(spec, dict):
                raise ValueError("type json_schema needs a json_schema object")
            if not _is_name(spec.get("name")):
                raise ValueError(f"json_schema.name is required and must match {_NAME.pattern}")
            if not isinstance(spec.get("schema"), dict):
                raise ValueError("json_schema.schema must be a JSON Schema object")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.tool_choice is not None and not self.tools:
            raise rule_error(
                "tool_choice", "'tool_choice' is only allowed when 'tools' are specified."
            )
        if self.top_logprobs is not None and not self.logprobs:
            raise rule_error(
                "top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true."
            )
        budget = self.max_completion_tokens or self.max_tokens
        if self.min_tokens is not None and budget is not None and self.min_tokens > budget:
            raise rule_error("min_tokens", "'min_tokens' must not exceed the completion budget.")
        return self


def _is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.match(value) is not None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: dict[str, Any] | None = None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChatChoice]
    usage: Usage


class ChoiceDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChoiceDelta
    logprobs: dict[str, Any] | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None
