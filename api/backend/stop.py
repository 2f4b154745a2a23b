"""Stopping a generation inside Triton when its caller leaves.

Cancelling the gRPC stream cancels the ensemble request, but Triton does not pass that
cancellation into a composing step that is already running (it only checks between steps):
the decoupled ``tensorrt_llm`` step would go on generating to ``max_tokens`` for nobody.
TensorRT-LLM's own answer is its ``stop`` input: a request to the LLM model with the same
request id and ``stop`` set ends that request. The CPU twin honours the same contract.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tritonclient.grpc import service_pb2

from api.backend.ensemble import ENABLE_EMPTY_FINAL
from api.backend.tensors import add_input

logger = logging.getLogger(__name__)

StopSender = Callable[[service_pb2.ModelInferRequest], Awaitable[None]]


def build_stop_request(llm_model: str, request_id: str) -> service_pb2.ModelInferRequest:
    """TensorRT-LLM's stop request; the required inputs carry placeholders."""
    message = service_pb2.ModelInferRequest(model_name=llm_model, id=request_id)
    message.parameters[ENABLE_EMPTY_FINAL].bool_param = True
    add_input(message, "input_ids", "INT32", [0])
    add_input(message, "input_lengths", "INT32", [1])
    add_input(message, "request_output_len", "INT32", [1])
    add_input(message, "stop", "BOOL", [True])
    return message


class Stopper:
    """Sends stop requests in the background: the caller is usually being cancelled itself."""

    def __init__(self, llm_model: str | None, send: StopSender) -> None:
        self._llm_model = llm_model
        self._send = send
        self._pending: set[asyncio.Task[None]] = set()

    def stop(self, request_id: str) -> None:
        """Ask the LLM model to end ``request_id`` (no-op if it has finished already)."""
        if self._llm_model is None:
            return
        task = asyncio.get_running_loop().create_task(self._stop(request_id))
        self._pending.add(task)  # a strong reference until it is done
        task.add_done_callback(self._pending.discard)

    async def _stop(self, request_id: str) -> None:
        assert self._llm_model is not None
        try:
            await self._send(build_stop_request(self._llm_model, request_id))
        except Exception as exc:
            # Triton down or restarting: the request died with it.
            logger.info("could not stop %s in Triton: %s", request_id, exc)

    async def wait(self, timeout_s: float) -> None:
        """Let stops in flight finish (at shutdown, before the channel closes)."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=timeout_s)
