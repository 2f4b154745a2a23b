"""``/v1/responses`` request shapes (OpenAI's Responses API).

Only the envelope is checked here; the input items, tools and ``text.format`` are read (and
refused by name where unsupported) by ``api.responses.items`` and ``api.responses.translate``,
which know what this deployment serves. Reference: the official ``openai`` SDK 3.63.0,
``openai/types/responses/response_create_params.py``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from api.schemas.bounds import INT32_MAX, check_json_bounds
from api.schemas.common import LenientModel, rule_error

# OpenAI's metadata limits: 16 pairs, keys up to 64 characters, values up to 512.
MAX_METADATA_PAIRS = 16


class CreateResponse(LenientModel):
    """The body of ``POST /v1/responses``; defaults are OpenAI's."""

    model: str
    input: str | list[dict[str, Any]] = Field(default="")
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    background: bool | None = None
    stream: bool | None = None
    include: list[str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    stream_options: dict[str, Any] | None = None
    # Known parameters this deployment refuses by name (api.responses.translate).
    reasoning: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    max_tool_calls: int | None = None
    context_management: list[dict[str, Any]] | None = None
    moderation: dict[str, Any] | None = None
    background_options: dict[str, Any] | None = None
    prompt_cache_retention: str | None = None

    @field_validator("input", "tools", "tool_choice", "text", "conversation")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_json_bounds(value)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > MAX_METADATA_PAIRS:
            raise ValueError(f"at most {MAX_METADATA_PAIRS} key-value pairs are allowed")
        for key, item in value.items():
            if len(key) > 64 or len(item) > 512:
                raise ValueError("keys are at most 64 characters and values at most 512")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.previous_response_id is not None and self.conversation is not None:
            raise rule_error(
                "conversation",
                "'previous_response_id' and 'conversation' cannot be used together.",
            )
        if self.background and self.store is False:
            raise rule_error(
                "background", "A background response must be stored: 'store' cannot be false."
            )
        if self.stream_options is not None and not self.stream:
            raise rule_error(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is true.",
            )
        return self

    def stored(self) -> bool:
        return self.store is not False

    def conversation_id(self) -> str | None:
        if isinstance(self.conversation, dict):
            found = self.conversation.get("id")
            return found if isinstance(found, str) else None
        return self.conversation


class CountInputTokens(LenientModel):
    """The body of ``POST /v1/responses/input_tokens``: what ``create`` would take as prompt."""

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: dict[str, Any] | None = None

    @field_validator("input", "tools", "tool_choice", "text", "conversation")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_json_bounds(value)
        return value


class CancelResponse(LenientModel):
    """``POST /v1/responses/{id}/cancel`` takes no parameters (an empty body or none)."""
