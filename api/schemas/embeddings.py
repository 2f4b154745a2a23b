"""`/v1/embeddings` request and response shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from api.schemas.common import LenientModel

# Token ids travel to Triton as INT32: anything past that cannot be an id of any model.
MAX_TOKEN_ID = 2**31 - 1
TokenId = Annotated[int, Field(ge=0, le=MAX_TOKEN_ID)]
EmbeddingInput = str | list[str] | list[TokenId] | list[list[TokenId]]


class EmbeddingRequest(LenientModel):
    model: str
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    # Inputs longer than the model reads are refused (as OpenAI does) unless the client asks
    # for them to be cut to the model's maximum (as Text Embeddings Inference's `truncate`).
    truncate: bool = False

    @field_validator("input", mode="before")
    @classmethod
    def _token_ids_in_range(cls, value: Any) -> Any:
        # Checked before the union, so the message names the id instead of every union member.
        rows = (
            value
            if isinstance(value, list) and all(isinstance(v, list) for v in value)
            else [value]
        )
        for row in rows:
            if not isinstance(row, list):
                continue
            bad = [t for t in row if type(t) is int and not 0 <= t <= MAX_TOKEN_ID]
            if bad:
                raise ValueError(f"token ids must be between 0 and {MAX_TOKEN_ID}; got {bad[0]}")
        return value


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage
