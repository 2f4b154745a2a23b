"""`/v1/completions` (legacy text completions) request and response shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import FinishReason, SamplingOptions, Usage

PromptField = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(SamplingOptions):
    """The request body; ``max_tokens`` defaults to 16 as in OpenAI's API."""

    prompt: PromptField
    max_tokens: int = Field(default=16, ge=1)
    echo: bool = False
    suffix: str | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    best_of: int | None = Field(default=None, ge=1, le=16)


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
