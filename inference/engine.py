"""The interface the Triton adapter drives, shared by both engines.

:class:`inference.generation.GenerationEngine` (transformers on CPU, the twin) and
:class:`inference.llmapi_engine.LLMAPIEngine` (TensorRT-LLM's LLM API on GPU) satisfy it, so
``inference.triton_llm_model`` serves the ensemble's ``tensorrt_llm`` step with either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from inference.generation import EngineCounts
from inference.request import GenerationRequest, Sink


class InferenceEngine(Protocol):
    """Token ids in, streamed :class:`GenerationOutput` deliveries out."""

    @property
    def default_end_id(self) -> int | None:
        """The checkpoint's end-of-sequence id, for requests that carry none."""
        ...

    @property
    def vocab_size(self) -> int:
        """Token ids must be below this."""
        ...

    @property
    def counts(self) -> EngineCounts:
        """Requests waiting and in flight now (``nv_trt_llm_request_metrics``)."""
        ...

    def start(self) -> None:
        """Start serving (idempotent)."""
        ...

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop; requests still in flight finish with an error."""
        ...

    def submit(
        self,
        request: GenerationRequest,
        sink: Sink,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> Any:
        """Queue a request (``ValueError`` when it cannot run); outputs go to ``sink``."""
        ...

    def cancel(self, request_id: str) -> bool:
        """Cancel the request in flight with this id; returns whether there was one."""
        ...
