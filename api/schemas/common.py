"""Pieces shared by several wire schemas."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LenientModel(BaseModel):
    """Accepts and ignores fields it does not know: newer SDKs send fields we don't have yet."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def unknown_fields(self) -> list[str]:
        """Names of the fields the client sent that this schema does not define."""
        return sorted((self.model_extra or {}).keys())


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class StreamOptions(LenientModel):
    include_usage: bool = False


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorDetail


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

StopField = str | list[str] | None

PositiveTokens = Field(default=None, ge=1)
