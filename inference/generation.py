"""In-flight batched generation with a Hugging Face causal LM on CPU.

One background thread runs the step loop, as TensorRT-LLM's in-flight batcher does: between two
forward passes, waiting requests are prefilled and join the batch, and finished or cancelled ones
leave it; each decode pass then steps every sequence in flight at once, so throughput grows with
concurrency. See :mod:`inference.kv_batch` for how the caches are merged.

A guided request is not admitted before its grammar is compiled: compiles run on worker
threads (:mod:`inference.guided`), so a slow one never stalls the decode steps of the others;
the request waits in ``_compiling`` and fails alone when its grammar does not compile in time.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, PreTrainedModel

from inference.guided import GrammarConstraint, GuidedDecoder, GuidedOptions
from inference.kv_batch import KVBatch
from inference.request import (
    GUIDED_ERROR_PREFIX,
    FinishReason,
    GenerationOutput,
    GenerationRequest,
    Sink,
)
from inference.sequence import SequenceState

logger = logging.getLogger(__name__)

__all__ = [
    "EngineCounts",
    "EngineStats",
    "FinishReason",
    "GenerationEngine",
    "GenerationHandle",
    "GenerationOutput",
    "GenerationRequest",
]


@dataclass(frozen=True)
class EngineStats:
    """Counters since start: forward passes, tokens chosen, and the largest batch decoded."""

    prefills: int
    decode_steps: int
    tokens: int
    max_batch_size: int


@dataclass(frozen=True)
class EngineCounts:
    """The requests the engine holds right now, counted as TensorRT-LLM's request metrics count
    them (``nv_trt_llm_request_metrics``): waiting is what has arrived but is not in the batch
    yet (no free sequence, or its grammar still compiling), the autoscaling signal."""

    waiting: int
    active: int
    max_active: int

    def request_metrics(self) -> dict[str, int]:
        """Values by TensorRT-LLM's ``request_type`` label. Every sequence in the batch is
        stepped each iteration, so scheduled equals active here."""
        return {
            "waiting": self.waiting,
            "active": self.active,
            "scheduled": self.active,
            "max": self.max_active,
        }


class GenerationHandle:
    """What :meth:`GenerationEngine.submit` returns: lets the caller cancel its request."""

    def __init__(self, state: SequenceState) -> None:
        self._state = state

    def cancel(self) -> None:
        """Stop generating; the sink then gets a final output with reason ``CANCELLED``."""
        self._state.cancel()


class GenerationEngine:
    """Owns a causal LM and the thread that batches every request in flight through it."""

    def __init__(
        self,
        model: PreTrainedModel,
        max_num_sequences: int = 8,
        cancel_check_period_s: float = 0.05,
        guided_decoder: GuidedDecoder | None = None,
    ) -> None:
        self._model = model
        self._guided_decoder = guided_decoder
        model.eval()  # type: ignore[no-untyped-call]
        self._batch = KVBatch(self._model)
        self._max_num_sequences = max(1, max_num_sequences)
        self._cancel_check_period_s = cancel_check_period_s
        self._vocab_size = _vocab_size(model)
        self._max_positions: int | None = getattr(model.config, "max_position_embeddings", None)
        self._pending: collections.deque[SequenceState] = collections.deque()
        # Guided requests whose grammar is still compiling, in arrival order.
        self._compiling: list[tuple[SequenceState, GrammarConstraint]] = []
        self._active: list[SequenceState] = []
        self._by_id: dict[str, SequenceState] = {}
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._stats = EngineStats(0, 0, 0, 0)

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        max_num_sequences: int = 8,
        cancel_check_period_s: float = 0.05,
        tokenizer_dir: str | Path | None = None,
        guided_options: GuidedOptions | None = None,
    ) -> GenerationEngine:
        """Load a checkpoint directory in float32 on CPU.

        Guided decoding needs the tokenizer: it is enabled when ``tokenizer_dir`` is given.
        """
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        guided = None
        if tokenizer_dir is not None:
            guided = GuidedDecoder.from_dir(tokenizer_dir, _vocab_size(model), guided_options)
        return cls(model, max_num_sequences, cancel_check_period_s, guided)

    @property
    def vocab_size(self) -> int:
        """Size of the logits row (token ids must be below it)."""
        return self._vocab_size

    @property
    def default_end_id(self) -> int | None:
        """The checkpoint's end-of-sequence id, for requests that carry none."""
        eos = getattr(self._model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = getattr(self._model.config, "eos_token_id", None)
        if isinstance(eos, list):
            return int(eos[0]) if eos else None
        return None if eos is None else int(eos)

    @property
    def stats(self) -> EngineStats:
        """A snapshot of the counters."""
        return self._stats

    @property
    def counts(self) -> EngineCounts:
        """How many requests wait for the batch and how many are in it, now."""
        with self._wake:
            waiting = len(self._pending) + len(self._compiling)
        return EngineCounts(waiting, len(self._active), self._max_num_sequences)

    def start(self) -> None:
        """Start the step loop thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="generation-loop", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the loop; requests still in flight finish with an error."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._guided_decoder is not None:
            self._guided_decoder.close()

    def submit(
        self,
        request: GenerationRequest,
        sink: Sink,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> GenerationHandle:
        """Queue a request; its outputs go to ``sink`` on the engine thread.

        ``is_cancelled`` is polled every ``cancel_check_period_s`` while the request is in flight.
        Raises ``ValueError`` for a request that cannot run; nothing is delivered then. A guide
        that does not compile (or not within its budget) ends the request with an error output.
        """
        self._validate(request)
        request = self._pad_bias(request)
        grammar = self._grammar(request)
        state = SequenceState(request, sink, self._vocab_size, is_cancelled, grammar)
        with self._wake:
            if self._closing:
                if grammar is not None:
                    grammar.abandon()
                raise RuntimeError("the generation engine is shut down")
            if grammar is None:
                self._pending.append(state)
            else:
                self._compiling.append((state, grammar))
            if request.request_id:
                self._by_id[request.request_id] = state
            self._wake.notify()
        return GenerationHandle(state)

    def cancel(self, request_id: str) -> bool:
        """Cancel the request in flight with this id; returns whether there was one."""
        with self._wake:
            state = self._by_id.get(request_id)
        if state is None:
            return False
        state.cancel()
        return True

    def _validate(self, request: GenerationRequest) -> None:
        if not request.input_ids:
            raise ValueError("input_ids must not be empty")
        if request.max_new_tokens < 1:
            raise ValueError("request_output_len must be at least 1")
        if min(request.input_ids) < 0 or max(request.input_ids) >= self._vocab_size:
            raise ValueError(f"input_ids must be in [0, {self._vocab_size})")
        total = len(request.input_ids) + request.max_new_tokens
        if self._max_positions is not None and total > self._max_positions:
            raise ValueError(
                f"context_length_exceeded: {len(request.input_ids)} input tokens + "
                f"{request.max_new_tokens} output tokens > {self._max_positions}"
            )
        for kind, words in (
            ("stop_words_list", request.stop_words),
            ("bad_words_list", request.bad_words),
        ):
            if any(not 0 <= token < self._vocab_size for word in words for token in word):
                raise ValueError(f"{kind} ids must be in [0, {self._vocab_size})")
        bias = request.embedding_bias
        if bias is not None and (bias.dim() != 1 or bias.shape[0] > self._vocab_size):
            raise ValueError(f"embedding_bias must have at most {self._vocab_size} values")

    def _pad_bias(self, request: GenerationRequest) -> GenerationRequest:
        """Zero-pad a bias sized for the tokenizer to a larger (padded) model vocabulary."""
        bias = request.embedding_bias
        if bias is None or bias.shape[0] == self._vocab_size:
            return request
        padded = F.pad(bias, (0, self._vocab_size - bias.shape[0]))
        return dataclasses.replace(request, embedding_bias=padded)

    def _grammar(self, request: GenerationRequest) -> GrammarConstraint | None:
        """Queue the request's guide for compilation (``ValueError`` when it cannot run)."""
        guided = request.guided_decoding
        if guided is None:
            return None
        if self._guided_decoder is None:
            raise ValueError(f"{GUIDED_ERROR_PREFIX} guided decoding is not enabled on this model")
        if request.end_id is None:
            raise ValueError(f"{GUIDED_ERROR_PREFIX} guided decoding needs an end_id")
        return self._guided_decoder.constraint(guided, request.end_id, on_ready=self._notify)

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def _run(self) -> None:
        logger.info("generation loop started (max %d sequences)", self._max_num_sequences)
        last_check = time.monotonic()
        with torch.inference_mode():
            while self._wait_for_work():
                now = time.monotonic()
                ask_caller = now - last_check >= self._cancel_check_period_s
                if ask_caller:
                    last_check = now
                try:
                    self._step(ask_caller)
                except Exception:
                    # A failed forward pass leaves the shared cache unusable: fail the batch only.
                    logger.exception("generation step failed")
                    self._fail_active("internal error in the generation step")
        self._shutdown()

    def _wait_for_work(self) -> bool:
        with self._wake:
            while not self._closing and not self._pending and not self._active:
                if self._compiling:
                    # Wake up for a compile's budget and its request's cancellation too.
                    self._wake.wait(self._cancel_check_period_s)
                    return not self._closing
                self._wake.wait()
            return not self._closing

    def _step(self, ask_caller: bool) -> None:
        for state in self._active:
            if state.poll_cancelled(ask_caller):
                state.finish(FinishReason.CANCELLED)
        self._admit(ask_caller)
        self._retire()
        if self._active:
            logits = self._batch.decode([state.last_token for state in self._active])
            logger.debug("decode step: batch size %d", len(self._active))
            for row, state in enumerate(self._active):
                self._advance(state, logits[row])
            self._count(decode_steps=1, tokens=len(self._active))
            self._retire()

    def _advance(self, state: SequenceState, logits: torch.Tensor) -> None:
        """Let one row choose its token; a failure there (e.g. every token banned) is its own."""
        try:
            state.step(logits)
        except Exception as error:
            logger.exception("sampling failed for request %r", state.request.request_id)
            state.finish(FinishReason.ERROR, error=f"sampling failed: {error}")

    def _collect_grammars(self, ask_caller: bool) -> None:
        """Move guided requests whose grammar is ready to the queue; fail those out of time."""
        with self._wake:
            compiling = list(self._compiling)
        if not compiling:
            return
        now = time.monotonic()
        for state, grammar in compiling:
            try:
                if state.poll_cancelled(ask_caller):
                    grammar.abandon()
                    state.finish(FinishReason.CANCELLED)
                elif not grammar.ready(now):
                    continue
            except Exception as error:
                # ValueError: the guide's own (invalid_guided_decoding:); others are internal.
                state.finish(FinishReason.ERROR, error=str(error) or type(error).__name__)
            with self._wake:
                self._compiling.remove((state, grammar))
                if not state.finished:
                    self._pending.append(state)
            if state.finished:
                self._forget(state)

    def _admit(self, ask_caller: bool) -> None:
        """Prefill waiting requests while there is room, and add them to the batch."""
        self._collect_grammars(ask_caller)
        with self._wake:
            waiting = list(self._pending)
        for state in waiting:
            if state.poll_cancelled(ask_caller):
                self._take_pending(state)
                state.finish(FinishReason.CANCELLED)
                self._forget(state)
        while len(self._active) < self._max_num_sequences:
            with self._wake:
                if not self._pending:
                    return
                state = self._pending.popleft()
            self._join(state)

    def _join(self, state: SequenceState) -> None:
        """Prefill one sequence, deliver its first token and merge its cache into the batch."""
        try:
            logits, cache = self._batch.prefill(state.request.input_ids)
            state.step(logits)
            self._count(prefills=1, tokens=1)
            if not state.finished:
                self._batch.add(cache)
                self._active.append(state)
        except Exception as error:
            logger.exception("prefill failed for request %r", state.request.request_id)
            state.finish(FinishReason.ERROR, error=f"prefill failed: {error}")
        if state.finished:
            self._forget(state)

    def _take_pending(self, state: SequenceState) -> None:
        with self._wake:
            if state in self._pending:
                self._pending.remove(state)

    def _retire(self) -> None:
        """Drop finished rows from the batch."""
        keep = [row for row, state in enumerate(self._active) if not state.finished]
        if len(keep) == len(self._active):
            return
        for state in self._active:
            if state.finished:
                self._forget(state)
        self._batch.keep(keep)
        self._active = [self._active[row] for row in keep]

    def _forget(self, state: SequenceState) -> None:
        with self._wake:
            if self._by_id.get(state.request.request_id) is state:
                del self._by_id[state.request.request_id]

    def _fail_active(self, message: str) -> None:
        for state in self._active:
            state.finish(FinishReason.ERROR, error=message)
        self._retire()

    def _shutdown(self) -> None:
        with self._wake:
            pending = list(self._pending)
            self._pending.clear()
            compiling = list(self._compiling)
            self._compiling.clear()
        for state, grammar in compiling:
            grammar.abandon()
            pending.append(state)
        for state in [*self._active, *pending]:
            state.finish(FinishReason.ERROR, error="the generation engine is shutting down")
        self._retire()
        logger.info("generation loop stopped")

    def _count(self, prefills: int = 0, decode_steps: int = 0, tokens: int = 0) -> None:
        stats = self._stats
        self._stats = EngineStats(
            prefills=stats.prefills + prefills,
            decode_steps=stats.decode_steps + decode_steps,
            tokens=stats.tokens + tokens,
            max_batch_size=max(stats.max_batch_size, len(self._active)),
        )


def _vocab_size(model: PreTrainedModel) -> int:
    head = model.get_output_embeddings()  # type: ignore[no-untyped-call]
    if isinstance(head, torch.nn.Linear):
        return int(head.out_features)
    return int(model.config.vocab_size)
