"""What a caller hands the generation engine, and what it gets back.

The fields mirror the inputs of TensorRT-LLM's ``tensorrt_llm`` model (``request_output_len``,
``runtime_top_k``, ``stop_words_list``...) so that the Triton adapter is a plain rename.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

TokenWords = tuple[tuple[int, ...], ...]
# Request errors of guided decoding start with this, so the API can tell them apart.
GUIDED_ERROR_PREFIX = "invalid_guided_decoding:"


class GuideType(enum.Enum):
    """TensorRT-LLM's ``guided_decoding_guide_type`` values."""

    JSON = "json"
    JSON_SCHEMA = "json_schema"
    REGEX = "regex"
    EBNF_GRAMMAR = "ebnf_grammar"


@dataclass(frozen=True)
class GuidedDecoding:
    """A grammar the output must follow: any JSON value (``JSON``, no guide), or the guide.

    ``guide`` is a JSON schema, a regular expression or an EBNF grammar (GBNF dialect, root rule
    ``root``), as in TensorRT-LLM's ``GuidedDecodingParams``.
    """

    guide_type: GuideType
    guide: str = ""

    @classmethod
    def parse(cls, guide_type: str, guide: str | None) -> GuidedDecoding:
        """Validate the two string inputs; a type other than ``json`` needs a guide."""
        try:
            kind = GuideType(guide_type)
        except ValueError:
            names = ", ".join(t.value for t in GuideType)
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} guided_decoding_guide_type must be one of {names}, "
                f"got {guide_type!r}"
            ) from None
        if kind is not GuideType.JSON and not guide:
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} guided_decoding_guide is required for {kind.value}"
            )
        return cls(kind, guide or "")


class FinishReason(enum.Enum):
    """Why a sequence left the batch."""

    END_ID = "end_id"
    STOP_WORDS = "stop_words"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to continue, with TensorRT-LLM's sampling semantics.

    ``top_k == 0`` means no top-k limit and ``top_p`` outside ``(0, 1)`` no top-p limit, except that
    ``top_k == 0`` together with ``top_p == 0`` is greedy, as in TensorRT-LLM (whose defaults are
    both 0). ``temperature == 0`` or ``top_k == 1`` is greedy too. ``seed=None`` draws a fresh
    seed, so such requests are not reproducible.
    """

    input_ids: tuple[int, ...]
    max_new_tokens: int
    request_id: str = ""
    end_id: int | None = None
    pad_id: int | None = None
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    seed: int | None = None
    min_tokens: int = 0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop_words: TokenWords = ()
    bad_words: TokenWords = ()
    embedding_bias: torch.Tensor | None = field(default=None, compare=False)
    guided_decoding: GuidedDecoding | None = None
    return_log_probs: bool = False
    return_generation_logits: bool = False
    streaming: bool = True

    @property
    def is_greedy(self) -> bool:
        """Whether the arg-max token is taken instead of a sample."""
        return self.temperature <= 0.0 or self.top_k == 1 or (self.top_k == 0 and self.top_p == 0.0)


@dataclass(frozen=True)
class GenerationOutput:
    """One delivery to a request's sink.

    When streaming, each step delivers its new token (``token_ids`` of length 1) and the end
    arrives as ``finished=True``, possibly with no token (the end id is never emitted). Without
    streaming, one delivery carries every generated token. ``log_probs`` are zeros unless the
    request asked for them; they are the log-softmax of the model's raw logits (before bias,
    temperature, penalties and grammar), like TensorRT-LLM's PyTorch backend's default "raw"
    mode. ``generation_logits`` (``[len(token_ids), vocab]``, raw logits) only when asked for.
    """

    request_id: str
    token_ids: tuple[int, ...]
    log_probs: tuple[float, ...]
    cum_log_prob: float
    num_input_tokens: int
    num_generated_tokens: int
    finished: bool = False
    finish_reason: FinishReason | None = None
    error: str | None = None
    generation_logits: torch.Tensor | None = field(default=None, compare=False)


Sink = Callable[[GenerationOutput], None]
"""Called on the engine's thread with each output of one request; it must not block for long."""
