"""Backend-neutral request and result types that cross the backend Protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Decoding controls, already validated and defaulted by the translation layer."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    min_tokens: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    return_log_probs: bool = False
    # Alternatives per token to return (needs the engine's generation logits).
    top_logprobs: int = 0
    # (token id, bias) pairs, OpenAI's logit_bias.
    logit_bias: tuple[tuple[int, float], ...] = ()
    # Constrained decoding: TensorRT-LLM's guide type ("json_schema", ...) and guide.
    guide_type: str | None = None
    guide: str | None = None
    # Set when max_tokens is only a default (the client sent none): the engine then generates
    # at most what fits in this context window after the prompt, as vLLM does.
    fit_context: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation: either a raw prompt or chat messages (rendered by preprocessing)."""

    request_id: str
    triton_model: str
    params: SamplingParams
    prompt: str | None = None
    messages_json: str | None = None
    tools_json: str | None = None
    # tool_choice forced a call: the whole reply is one guided {"name", "arguments"} object.
    forced_tool_call: bool = False
    # tool_choice named the function (OpenAI then finishes the reply with "stop").
    named_tool_call: bool = False


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its raw bytes, log probability and the most likely alternatives."""

    token: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


@dataclass(slots=True)
class GenerationChunk:
    """What one backend response adds: a text delta and/or token counts."""

    text: str = ""
    # The stream's held-back tail as of this response (an incomplete character as U+FFFD),
    # None when the response carried no text: what the text ends with if the stream ends here
    # (model_repository/README.md). The backend appends it to the final chunk's text.
    pending: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int = 0
    final: bool = False
    logprobs: list[TokenLogprob] = field(default_factory=list)


# One embedding batch: texts, or token-id lists in the embedding model's own vocabulary.
EmbeddingInputs = Sequence[str | Sequence[int]]


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    vectors: npt.NDArray[np.float32]
    token_counts: list[int]


@dataclass(frozen=True, slots=True)
class Readiness:
    """Triton's own readiness and each model's, plus what the API's own guards add.

    ``degraded`` names the models whose circuit breaker is open (with the breaker state);
    ``draining`` is set while the API shuts down and takes no new work. ``replicas`` gives,
    per endpoint with several replicas, each replica's address and state (``ready``,
    ``ejected``, ``draining``).
    """

    server_ready: bool
    models: dict[str, bool] = field(default_factory=dict)
    detail: str = ""
    degraded: dict[str, str] = field(default_factory=dict)
    draining: bool = False
    replicas: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return (
            self.server_ready
            and all(self.models.values())
            and not self.degraded
            and not self.draining
        )
