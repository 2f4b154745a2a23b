"""`/v1/moderations` request and response shapes (OpenAI's Moderations API)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import LenientModel


class ModerationRequest(LenientModel):
    input: str | list[str] = Field(min_length=1)
    model: str | None = None


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]
