"""The per-request state the engine keeps while a sequence is in flight."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import torch

from inference.guided import GrammarConstraint
from inference.request import FinishReason, GenerationOutput, GenerationRequest, Sink
from inference.sampling import choose_token, ends_with, process_logits, token_log_prob

logger = logging.getLogger(__name__)


class SequenceState:
    """Tokens, penalty counts, RNG, grammar and delivery of one request.

    Only the engine thread touches it, except :meth:`cancel`, which any thread may call.
    """

    def __init__(
        self,
        request: GenerationRequest,
        sink: Sink,
        vocab_size: int,
        is_cancelled: Callable[[], bool] | None = None,
        grammar: GrammarConstraint | None = None,
    ) -> None:
        self.request = request
        self._sink = sink
        self._is_cancelled = is_cancelled
        self._grammar = grammar
        self._cancel_event = threading.Event()
        self.tokens: list[int] = list(request.input_ids)
        self.generated: list[int] = []
        self.log_probs: list[float] = []
        # Raw logits of each generated token, kept only for return_generation_logits.
        self._logits: list[torch.Tensor] = []
        self.finish_reason: FinishReason | None = None
        # Occurrence counts over prompt and output: TensorRT-LLM penalises prompt tokens too.
        self._counts = torch.bincount(
            torch.tensor(request.input_ids, dtype=torch.long), minlength=vocab_size
        )[:vocab_size]
        self._generator = torch.Generator()
        if request.seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(request.seed)

    @property
    def finished(self) -> bool:
        """Whether the sequence has delivered its final output."""
        return self.finish_reason is not None

    def cancel(self) -> None:
        """Ask the engine to drop this sequence at its next step (thread-safe)."""
        self._cancel_event.set()

    def poll_cancelled(self, ask_caller: bool) -> bool:
        """Whether the request was cancelled; ``ask_caller`` also consults the caller's hook."""
        if self._cancel_event.is_set():
            return True
        if ask_caller and self._is_cancelled is not None and self._is_cancelled():
            self._cancel_event.set()
        return self._cancel_event.is_set()

    def step(self, logits: torch.Tensor) -> None:
        """Choose the next token from this sequence's row of (raw) logits and deliver it."""
        request = self.request
        processed = process_logits(logits, request, self._counts, self.tokens, len(self.generated))
        if self._grammar is not None:
            processed = self._grammar.mask(processed)
        token = choose_token(processed, request, self._generator)
        if token == request.end_id:
            self.finish(FinishReason.END_ID)
            return
        if self._grammar is not None:
            self._grammar.accept(token)
        self._record(token, logits)
        reason = self._finish_reason_after(token)
        if reason is not None:
            self.finish(reason)
        elif request.streaming:
            self._deliver(self._output(new_tokens=1))

    def _record(self, token: int, logits: torch.Tensor) -> None:
        request = self.request
        self.tokens.append(token)
        self.generated.append(token)
        self.log_probs.append(token_log_prob(logits, token) if request.return_log_probs else 0.0)
        if request.return_generation_logits:
            # A copy: the row is a view into the whole batch's logits.
            self._logits.append(logits.detach().float().clone())
        if 0 <= token < self._counts.shape[0]:
            self._counts[token] += 1

    @property
    def last_token(self) -> int:
        """The token the next forward pass feeds for this sequence."""
        return self.tokens[-1]

    def finish(self, reason: FinishReason, error: str | None = None) -> None:
        """Deliver the final output (idempotent)."""
        if self.finished:
            return
        self.finish_reason = reason
        logger.debug(
            "request %r finished (%s) after %d tokens",
            self.request.request_id,
            reason.value,
            len(self.generated),
        )
        # Streaming already delivered every token except one emitted at this very step.
        if self.request.streaming:
            emitted_now = reason in (FinishReason.LENGTH, FinishReason.STOP_WORDS)
            new_tokens = 1 if emitted_now else 0
        else:
            new_tokens = len(self.generated)
        self._deliver(self._output(new_tokens, finished=True, error=error))

    def _finish_reason_after(self, token: int) -> FinishReason | None:
        if any(ends_with(self.tokens, word) for word in self.request.stop_words):
            return FinishReason.STOP_WORDS
        if len(self.generated) >= self.request.max_new_tokens:
            return FinishReason.LENGTH
        return None

    def _output(
        self, new_tokens: int, finished: bool = False, error: str | None = None
    ) -> GenerationOutput:
        start = len(self.generated) - new_tokens
        logits = None
        if self.request.return_generation_logits:
            logits = _stack(self._logits[len(self._logits) - new_tokens :], self._counts.shape[0])
            # Streaming never needs the rows again; without streaming this is the last delivery.
            self._logits.clear()
        return GenerationOutput(
            request_id=self.request.request_id,
            token_ids=tuple(self.generated[start:]),
            log_probs=tuple(self.log_probs[start:]),
            cum_log_prob=sum(self.log_probs),
            num_input_tokens=len(self.request.input_ids),
            num_generated_tokens=len(self.generated),
            finished=finished,
            finish_reason=self.finish_reason if finished else None,
            error=error,
            generation_logits=logits,
        )

    def _deliver(self, output: GenerationOutput) -> None:
        try:
            self._sink(output)
        except Exception:
            # A sink that cannot deliver (client gone, stream closed) ends the sequence.
            logger.exception(
                "delivery failed for request %r; cancelling it", self.request.request_id
            )
            self._cancel_event.set()


def _stack(rows: list[torch.Tensor], vocab_size: int) -> torch.Tensor:
    if not rows:
        return torch.zeros((0, vocab_size), dtype=torch.float32)
    return torch.stack(rows)
