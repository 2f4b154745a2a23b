"""The ``tensorrt_llm`` step over TensorRT-LLM's LLM API (PyTorch backend, GPU).

Same contract as :class:`inference.generation.GenerationEngine` (``inference.engine``): token ids
in, :class:`GenerationOutput` deliveries out. ``tensorrt_llm`` is imported only inside
:meth:`LLMAPIEngine.from_options`, so CPU hosts never load it.

Built against NVIDIA/TensorRT-LLM main as stored 2026-12 (commit 000a01de66f0):
``tensorrt_llm/sampling_params.py`` (``SamplingParams``: ``end_id``, ``pad_id``, ``max_tokens``,
``stop_token_ids``, ``bad_token_ids``, ``logits_processor``, ``top_k``/``top_p``/``seed``/
``temperature``/``min_tokens``, the three penalties, ``logprobs``, ``return_generation_logits``,
``guided_decoding``; ``GuidedDecodingParams(json=, regex=, grammar=, json_object=)``;
``LogitsProcessor.__call__(req_id, logits, token_ids, stream_ptr, client_id)`` edits logits in
place), ``tensorrt_llm/llmapi/llm.py`` (``LLM.generate_async(inputs, sampling_params,
streaming=True)`` returns a ``RequestOutput``: ``async for`` yields each step, ``abort()``
cancels) and ``tensorrt_llm/executor/result.py`` (``CompletionOutput``: cumulative
``token_ids``, ``logprobs``, ``cumulative_logprob``, ``finish_reason``, ``stop_reason``,
``generation_logits``).

Mapping notes. Stop and bad words of one token go to ``stop_token_ids`` / ``bad_token_ids``;
the LLM API takes longer ones only as strings, so longer stop words are matched here on the
streamed ids (the request is aborted and cut after the word, which stays in the output as in
TensorRT-LLM) and longer bad words are masked by a logits processor, which also adds
``embedding_bias``. ``seed=None`` draws a fresh seed (the LLM API's default would be 0 for every
request). Greedy requests send ``top_k=1``. The engine always streams from the LLM API and
delivers once at the end when the request does not stream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from inference.generation import EngineCounts
from inference.request import (
    GUIDED_ERROR_PREFIX,
    FinishReason,
    GenerationOutput,
    GenerationRequest,
    GuideType,
    Sink,
    TokenWords,
)

logger = logging.getLogger(__name__)

_SUBMIT_TIMEOUT_S = 30.0


class WordsProcessor:
    """A ``tensorrt_llm.sampling_params.LogitsProcessor``: adds the embedding bias, masks the
    last token of every multi-token bad word whose prefix ends the sequence, and masks the
    ``held`` tokens (single-token stop words) until ``min_tokens`` have been generated:
    TensorRT-LLM's ``min_tokens`` holds back only ``end_id``, and the model's other end ids
    come as stop words (``inference.sampling.min_tokens_bans`` on CPU)."""

    def __init__(
        self,
        bias: torch.Tensor | None,
        bad_words: TokenWords,
        held: tuple[int, ...] = (),
        min_tokens: int = 0,
    ) -> None:
        self.bias = bias
        self.bad_words = bad_words
        self.held = list(held)
        self.min_tokens = min_tokens
        # The length of the sequences at the first call (the first generated token), so the
        # count does not depend on whether ``token_ids`` include the prompt.
        self._first_length: int | None = None

    def __call__(
        self,
        req_id: int,
        logits: torch.Tensor,
        token_ids: list[list[int]],
        stream_ptr: int | None,
        client_id: int | None,
    ) -> None:
        if self.bias is not None:
            logits += self.bias.to(device=logits.device, dtype=logits.dtype)
        for beam, tokens in enumerate(token_ids):
            if self._first_length is None:
                self._first_length = len(tokens)
            if self.held and len(tokens) - self._first_length < self.min_tokens:
                row = logits[..., beam, :] if logits.dim() > 1 else logits
                row[..., self.held] = -math.inf
            for word in self.bad_words:
                prefix = word[:-1]
                if (
                    len(tokens) >= len(prefix)
                    and tuple(tokens[len(tokens) - len(prefix) :]) == prefix
                ):
                    row = logits[..., beam, :] if logits.dim() > 1 else logits
                    row[..., word[-1]] = -math.inf


@dataclass
class _Flight:
    """One request in flight."""

    request: GenerationRequest
    sink: Sink
    is_cancelled: Callable[[], bool] | None
    result: Any = None
    tokens: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)
    delivered: int = 0
    started: bool = False
    cancelled: bool = False
    done: bool = False


class LLMAPIEngine:
    """Serves requests through one ``tensorrt_llm.LLM`` on an asyncio loop thread."""

    def __init__(
        self,
        llm: Any,
        api: ModuleType,
        vocab_size: int,
        default_end_id: int | None,
        max_active: int = 8,
        cancel_check_period_s: float = 0.05,
        guided_decoding: bool = False,
    ) -> None:
        self._llm = llm
        self._api = api
        self._vocab_size = vocab_size
        self._default_end_id = default_end_id
        self._max_active = max_active
        self._cancel_check_period_s = cancel_check_period_s
        self._guided_decoding = guided_decoding
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._flights: dict[int, _Flight] = {}
        self._by_id: dict[str, _Flight] = {}
        self._lock = threading.Lock()
        self._closing = False

    @classmethod
    def from_options(
        cls,
        model_dir: str | Path,
        options: Mapping[str, Any],
        cancel_check_period_s: float = 0.05,
    ) -> LLMAPIEngine:
        """Build ``tensorrt_llm.LLM(model=model_dir, **options)`` (options: model.yaml)."""
        import tensorrt_llm

        vocab_size, end_id = _checkpoint_facts(Path(model_dir))
        llm = tensorrt_llm.LLM(model=str(model_dir), **dict(options))
        return cls(
            llm,
            tensorrt_llm,
            vocab_size,
            end_id,
            max_active=int(options.get("max_batch_size", 8)),
            cancel_check_period_s=cancel_check_period_s,
            guided_decoding=bool(options.get("guided_decoding_backend")),
        )

    @property
    def vocab_size(self) -> int:
        """Token ids must be below this."""
        return self._vocab_size

    @property
    def default_end_id(self) -> int | None:
        """The checkpoint's end-of-sequence id."""
        return self._default_end_id

    @property
    def counts(self) -> EngineCounts:
        """Waiting: submitted, no token yet; active: producing tokens."""
        with self._lock:
            flights = list(self._flights.values())
        active = sum(1 for f in flights if f.started)
        return EngineCounts(len(flights) - active, active, self._max_active)

    def start(self) -> None:
        """Start the loop thread and its cancellation watch (idempotent)."""
        if self._thread is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run, name="llmapi-loop", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Abort what is in flight (each gets an error output), stop the loop, shut the LLM."""
        with self._lock:
            self._closing = True
            flights = list(self._flights.values())
        for flight in flights:
            if flight.result is not None:
                flight.result.abort()
            self._finish(flight, FinishReason.ERROR, "the generation engine is shut down")
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)
            self._thread = None
        shutdown = getattr(self._llm, "shutdown", None)
        if callable(shutdown):
            shutdown()

    def submit(
        self,
        request: GenerationRequest,
        sink: Sink,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> _Flight:
        """Hand the request to the LLM API; ``ValueError`` (nothing delivered) when it cannot
        run, including when the LLM API itself refuses it."""
        self._validate(request)
        params = self._api.SamplingParams(**self.sampling_kwargs(request))
        flight = _Flight(request, sink, is_cancelled)
        with self._lock:
            loop = self._loop
            if self._closing or loop is None:
                raise RuntimeError("the generation engine is not running")
        future = asyncio.run_coroutine_threadsafe(self._enqueue(flight, params), loop)
        try:
            future.result(_SUBMIT_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RuntimeError("the LLM API did not take the request in time") from None
        return flight

    def cancel(self, request_id: str) -> bool:
        """Abort the request in flight with this id."""
        with self._lock:
            flight = self._by_id.get(request_id)
        if flight is None:
            return False
        self._abort(flight)
        return True

    def sampling_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """The ``SamplingParams`` arguments for one request."""
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_new_tokens,
            "end_id": request.end_id if request.end_id is not None else self._default_end_id,
            "seed": request.seed if request.seed is not None else secrets.randbits(63),
            "repetition_penalty": request.repetition_penalty,
            "presence_penalty": request.presence_penalty,
            "frequency_penalty": request.frequency_penalty,
        }
        if request.pad_id is not None:
            kwargs["pad_id"] = request.pad_id
        if request.is_greedy:
            kwargs["top_k"] = 1
        else:
            kwargs["temperature"] = request.temperature
            kwargs["top_k"] = request.top_k if request.top_k > 0 else None
            kwargs["top_p"] = request.top_p if 0.0 < request.top_p < 1.0 else 1.0
        if request.min_tokens > 0:
            kwargs["min_tokens"] = request.min_tokens
        stop_tokens = [word[0] for word in request.stop_words if len(word) == 1]
        if stop_tokens:
            kwargs["stop_token_ids"] = stop_tokens
        bad_tokens = [word[0] for word in request.bad_words if len(word) == 1]
        if bad_tokens:
            kwargs["bad_token_ids"] = bad_tokens
        long_bad = tuple(word for word in request.bad_words if len(word) > 1)
        held = tuple(stop_tokens) if request.min_tokens > 0 else ()
        if request.embedding_bias is not None or long_bad or held:
            kwargs["logits_processor"] = WordsProcessor(
                request.embedding_bias, long_bad, held, request.min_tokens
            )
        if request.return_log_probs:
            kwargs["logprobs"] = 1
        if request.return_generation_logits:
            kwargs["return_generation_logits"] = True
        if request.guided_decoding is not None:
            kwargs["guided_decoding"] = self._guide(request)
        return kwargs

    def _guide(self, request: GenerationRequest) -> Any:
        guided = request.guided_decoding
        assert guided is not None
        params = self._api.GuidedDecodingParams
        if guided.guide_type is GuideType.JSON:
            return params(json_object=True)
        if guided.guide_type is GuideType.JSON_SCHEMA:
            return params(json=guided.guide)
        if guided.guide_type is GuideType.REGEX:
            return params(regex=guided.guide)
        return params(grammar=guided.guide)

    def _validate(self, request: GenerationRequest) -> None:
        if not request.input_ids:
            raise ValueError("input_ids must not be empty")
        if min(request.input_ids) < 0 or max(request.input_ids) >= self._vocab_size:
            raise ValueError(f"input_ids must be in [0, {self._vocab_size})")
        if request.max_new_tokens < 1:
            raise ValueError("request_output_len must be at least 1")
        for kind, words in (("stop_words", request.stop_words), ("bad_words", request.bad_words)):
            if any(not 0 <= token < self._vocab_size for word in words for token in word):
                raise ValueError(f"{kind} ids must be in [0, {self._vocab_size})")
        bias = request.embedding_bias
        if bias is not None and (bias.dim() != 1 or bias.shape[0] != self._vocab_size):
            # The LLM API adds the bias row to the logits: it must cover the vocabulary exactly.
            raise ValueError(f"embedding_bias must have {self._vocab_size} values")
        if request.guided_decoding is not None and not self._guided_decoding:
            raise ValueError(
                f"{GUIDED_ERROR_PREFIX} guided decoding is off for this model "
                "(set guided_decoding_backend: xgrammar in its model.yaml)"
            )

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        loop.create_task(self._watch_cancellation())
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _enqueue(self, flight: _Flight, params: Any) -> None:
        """Called on the loop (the LLM API binds a request's queue to the caller's loop)."""
        flight.result = self._llm.generate_async(
            list(flight.request.input_ids), sampling_params=params, streaming=True
        )
        with self._lock:
            self._flights[id(flight)] = flight
            if flight.request.request_id:
                self._by_id[flight.request.request_id] = flight
        asyncio.get_running_loop().create_task(self._consume(flight))

    async def _consume(self, flight: _Flight) -> None:
        try:
            async for step in flight.result:
                if flight.done:
                    break
                self._take(flight, step)
        except Exception as error:  # the LLM API failed this request
            logger.exception("request %r failed", flight.request.request_id)
            self._finish(flight, FinishReason.ERROR, f"TensorRT-LLM: {error}")
        if not flight.done:  # the stream ended without a final step (aborted)
            self._finish(flight, FinishReason.CANCELLED)

    def _take(self, flight: _Flight, step: Any) -> None:
        """Record one step's new tokens; deliver them, or the end."""
        output = step.outputs[0]
        tokens = list(output.token_ids)
        new = tokens[len(flight.tokens) :]
        new_logprobs = _log_probs(list(output.logprobs or [])[len(flight.tokens) :], new)
        if flight.request.return_generation_logits and output.generation_logits is not None:
            logits = output.generation_logits
            flight.logits.extend(logits[len(flight.tokens) : len(tokens)])
        flight.tokens.extend(new)
        flight.log_probs.extend(new_logprobs)
        flight.started = True
        stop_at = _stop_word_end(
            flight.tokens, flight.request.stop_words, len(flight.tokens) - len(new)
        )
        if stop_at is not None:
            del flight.tokens[stop_at:], flight.log_probs[stop_at:], flight.logits[stop_at:]
            flight.result.abort()
            self._finish(flight, FinishReason.STOP_WORDS)
            return
        if flight.cancelled:
            self._finish(flight, FinishReason.CANCELLED)
            return
        if getattr(step, "finished", False) or output.finish_reason is not None:
            self._finish(flight, _finish_reason(output, flight.tokens, flight.request))
            return
        if flight.request.streaming and len(flight.tokens) > flight.delivered:
            self._deliver(flight, finished=False)

    def _finish(self, flight: _Flight, reason: FinishReason, error: str | None = None) -> None:
        with self._lock:
            if flight.done:
                return
            flight.done = True
            self._flights.pop(id(flight), None)
            if self._by_id.get(flight.request.request_id) is flight:
                del self._by_id[flight.request.request_id]
        self._deliver(flight, finished=True, reason=reason, error=error)

    def _deliver(
        self,
        flight: _Flight,
        finished: bool,
        reason: FinishReason | None = None,
        error: str | None = None,
    ) -> None:
        start = flight.delivered if flight.request.streaming else 0
        tokens = tuple(flight.tokens[start:])
        wants = flight.request.return_log_probs
        log_probs = tuple(flight.log_probs[start:]) if wants else (0.0,) * len(tokens)
        logits = None
        if flight.request.return_generation_logits and flight.logits[start:]:
            logits = torch.stack(flight.logits[start:])
        flight.delivered = len(flight.tokens)
        flight.sink(
            GenerationOutput(
                request_id=flight.request.request_id,
                token_ids=tokens,
                log_probs=log_probs,
                cum_log_prob=float(sum(flight.log_probs)) if wants else 0.0,
                num_input_tokens=len(flight.request.input_ids),
                num_generated_tokens=len(flight.tokens),
                finished=finished,
                finish_reason=reason if finished else None,
                error=error,
                generation_logits=logits,
            )
        )

    def _abort(self, flight: _Flight) -> None:
        flight.cancelled = True
        if flight.result is not None:
            flight.result.abort()

    async def _watch_cancellation(self) -> None:
        while True:
            await asyncio.sleep(self._cancel_check_period_s)
            with self._lock:
                flights = list(self._flights.values())
            for flight in flights:
                if (
                    not flight.cancelled
                    and flight.is_cancelled is not None
                    and flight.is_cancelled()
                ):
                    self._abort(flight)


# Keys of Triton's llmapi model.yaml that are not LLM() arguments.
_NOT_LLM_ARGUMENTS = ("model", "triton_config")


def load_options(path: Path) -> dict[str, Any]:
    """The ``LLM()`` keyword arguments of a model.yaml (``model`` comes from ``model_dir``)."""
    import yaml

    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} must hold a mapping of LLM() arguments")
    return {str(k): v for k, v in loaded.items() if k not in _NOT_LLM_ARGUMENTS}


def _log_probs(entries: list[Any], tokens: list[int]) -> list[float]:
    """The sampled tokens' log probs: floats, or TensorRT-LLM's ``{token_id: Logprob}`` maps."""
    values: list[float] = []
    for entry, token in zip(entries, tokens, strict=False):
        if isinstance(entry, Mapping):
            chosen: Any = entry.get(token)
            values.append(0.0 if chosen is None else float(getattr(chosen, "logprob", chosen)))
        else:
            values.append(float(entry))
    return values + [0.0] * (len(tokens) - len(values))


def _stop_word_end(tokens: list[int], words: TokenWords, first_new: int) -> int | None:
    """Where the earliest multi-token stop word ending at a new position ends, if any."""
    for end in range(max(first_new, 0) + 1, len(tokens) + 1):
        for word in words:
            if len(word) > 1 and end >= len(word) and tuple(tokens[end - len(word) : end]) == word:
                return end
    return None


def _finish_reason(output: Any, tokens: list[int], request: GenerationRequest) -> FinishReason:
    reason = output.finish_reason
    if reason == "length":
        return FinishReason.LENGTH
    if reason == "cancelled":
        return FinishReason.CANCELLED
    if reason == "stop" and output.stop_reason is not None:
        return FinishReason.STOP_WORDS
    if tokens and tokens[-1] == request.end_id:
        tokens.pop()  # the end id is never emitted (as by TensorRT-LLM's tensorrt_llm model)
    return FinishReason.END_ID


def _checkpoint_facts(model_dir: Path) -> tuple[int, int | None]:
    """Vocabulary size and end id from a Hugging Face checkpoint's JSON files."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config) if "vocab_size" not in config else config
    eos: Any = None
    generation = model_dir / "generation_config.json"
    if generation.is_file():
        eos = json.loads(generation.read_text(encoding="utf-8")).get("eos_token_id")
    if eos is None:
        eos = config.get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    return int(config["vocab_size"]), None if eos is None else int(eos)
