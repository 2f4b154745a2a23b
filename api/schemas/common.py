"""Pieces shared by several wire schemas."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.schemas.bounds import FLOAT32_MAX, INT32_MAX, UINT64_MAX

# Validation context key: true where ``stream`` alone decides whether the reply streams (the
# HTTP routes). A WebSocket always streams and a batch never does; they leave it out.
STREAM_DECIDES: Final = "stream_decides"


class LenientModel(BaseModel):
    """Accepts and ignores fields it does not know: newer SDKs send fields we don't have yet."""

    # strict: a wrong JSON type is a 400 (as in OpenAI), not silently coerced ("1" -> 1).
    # No NaN or infinity: JSON cannot carry them, and the engine must never see them.
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, strict=True, allow_inf_nan=False
    )

    def unknown_fields(self) -> list[str]:
        """Names of the fields the client sent that this schema does not define."""
        return sorted((self.model_extra or {}).keys())


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

StopField = str | list[str] | None


def rule_error(field: str, message: str, kind: str = "invalid_value") -> PydanticCustomError:
    """The error of a rule across fields, naming the ``field`` at fault (relative to the model
    that checks the rule): ``api.http.request_body`` reports it as the parameter. ``kind`` "missing"
    reads as a missing required parameter. ``message`` must not contain client text."""
    return PydanticCustomError(kind, message, {"field": field})


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class StreamOptions(LenientModel):
    include_usage: bool = False


class SamplingOptions(LenientModel):
    """Decoding options shared by chat and legacy completions (OpenAI's names and ranges)."""

    model: str
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    # -1 and 0 mean "off"; the engine takes INT32.
    top_k: int | None = Field(default=None, ge=-1, le=INT32_MAX)
    n: int = Field(default=1, ge=1, le=16)
    stop: StopField = None
    # The engine's seed is a UINT64: a negative seed is refused, never wrapped.
    seed: int | None = Field(default=None, ge=0, le=UINT64_MAX)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=FLOAT32_MAX)
    min_tokens: int | None = Field(default=None, ge=0, le=INT32_MAX)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: StopField) -> StopField:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        if any(stop == "" for stop in stops):
            raise ValueError("stop sequences must not be empty")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (value or {}).items():
            if token_id(token) is None:
                raise ValueError(
                    f"logit_bias keys must be token ids (0 to {INT32_MAX} in ASCII digits), "
                    f"got {token[:20]!r}"
                )
            if not -100.0 <= bias <= 100.0:
                raise ValueError("logit_bias values must be between -100 and 100")
        return value

    @model_validator(mode="after")
    def _streaming_rules(self, info: ValidationInfo) -> Any:
        # Only where `stream` decides: a WebSocket streams whatever `stream` says.
        if (
            self.stream_options is not None
            and not self.stream
            and (info.context or {}).get(STREAM_DECIDES)
        ):
            raise rule_error(
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is true.",
            )
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def token_id(key: str) -> int | None:
    """A ``logit_bias`` key as a token id, or None unless it is plain ASCII digits within
    INT32 ("-1", "+5", " 5", "1e3" and non-ASCII digits such as "\u0663" are not ids)."""
    if not (0 < len(key) <= 10 and key.isascii() and key.isdigit()):
        return None
    value = int(key)
    return value if value <= INT32_MAX else None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorDetail
