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
    return_log_probs: bool = False
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
    request asked for them.
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


Sink = Callable[[GenerationOutput], None]
"""Called on the engine's thread with each output of one request; it must not block for long."""
