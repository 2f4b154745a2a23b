"""`/v1/models` response shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    context_length: int | None = None
    capabilities: list[str] = []
    aliases: list[str] = []
    parameters: str | None = None
    quantization: str | None = None
    embedding_dimensions: int | None = None
    deprecated: bool = False
    # Whether the model serves now: "unavailable" while its circuit breaker is open or it
    # fails the active probe (e.g. its Triton endpoint is down); other models are unaffected.
    status: Literal["ready", "unavailable"] | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
