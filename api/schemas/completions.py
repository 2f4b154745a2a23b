"""`/v1/completions` (legacy text completions) request and response shapes."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from api.schemas.bounds import INT32_MAX
from api.schemas.common import FinishReason, SamplingOptions, Usage, rule_error

PromptField = str | list[str] | list[int] | list[list[int]]
_PROMPT_SHAPES = "a string, an array of strings, an array of token ids or an array of those"


class CompletionRequest(SamplingOptions):
    """The request body; ``max_tokens`` defaults to 16 as in OpenAI's API.

    An empty prompt ("" or [""]) is valid: the model writes from the start of a document.
    """

    prompt: PromptField
    # The engine takes INT32; the model's context bounds it further (api.generation.translate).
    max_tokens: int = Field(default=16, ge=1, le=INT32_MAX)
    echo: bool = False
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    best_of: int | None = Field(default=None, ge=1, le=16)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_shape(cls, value: object) -> object:
        # Checked before the union, whose own errors name a member type ("valid string").
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValueError(f"prompt must be {_PROMPT_SHAPES}")
        if not value:
            raise ValueError("prompt must not be an empty array")
        if all(isinstance(item, str) for item in value):
            return value
        rows = value if all(isinstance(item, list) for item in value) else [value]
        for row in rows:
            _check_token_ids(row)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_tokens is not None and self.min_tokens > self.max_tokens:
            raise rule_error("min_tokens", "'min_tokens' must not exceed 'max_tokens'.")
        return self


def _check_token_ids(row: list[Any]) -> None:
    if not row:
        raise ValueError("a token-id prompt must not be empty")
    for token in row:
        # bool is an int in Python, not in JSON.
        if not isinstance(token, int) or isinstance(token, bool):
            raise ValueError(f"prompt must be {_PROMPT_SHAPES}")
        if not 0 <= token <= INT32_MAX:
            raise ValueError(f"token ids must be between 0 and {INT32_MAX}")


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: dict[str, Any] | None = None
    finish_reason: FinishReason | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[CompletionChoice]
    usage: Usage | None = None
