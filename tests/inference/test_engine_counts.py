"""GenerationEngine.counts: the waiting/active requests the CPU twin exports as TensorRT-LLM's
``nv_trt_llm_request_metrics`` (the chart's autoscaling signal), on a tiny random Llama."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest

from inference.generation import EngineCounts, GenerationEngine
from inference.request import GenerationOutput, GenerationRequest
from tests.inference.tiny_llama import drain, save_tiny_llama, tokens_of

SEQUENCES = 2
REQUESTS = 5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def request(index: int, tokens: int = 6) -> GenerationRequest:
    return GenerationRequest((5, 6, index + 7), tokens, temperature=0.0, end_id=None)


def test_requests_past_the_sequences_wait_then_the_counts_return_to_zero(
    model_dir: Path,
) -> None:
    engine = GenerationEngine.from_pretrained(model_dir, max_num_sequences=SEQUENCES)
    seen: list[EngineCounts] = []
    queues: list[queue.Queue[GenerationOutput]] = [queue.Queue() for _ in range(REQUESTS)]

    def sink_of(outputs: queue.Queue[GenerationOutput]) -> object:
        def sink(output: GenerationOutput) -> None:
            seen.append(engine.counts)  # on the engine thread, between two steps
            outputs.put(output)

        return sink

    for index, outputs in enumerate(queues):
        engine.submit(request(index), sink_of(outputs))  # type: ignore[arg-type]
    # Not started yet: everything waits.
    assert engine.counts == EngineCounts(waiting=REQUESTS, active=0, max_active=SEQUENCES)
    engine.start()
    try:
        assert [len(tokens_of(drain(outputs))) for outputs in queues] == [6] * REQUESTS
        assert max(c.active for c in seen) == SEQUENCES
        # A request being prefilled is in neither count (TensorRT-LLM's "context" phase).
        assert all(c.active <= SEQUENCES and c.waiting + c.active <= REQUESTS for c in seen)
        assert any(c.waiting > 0 and c.active == SEQUENCES for c in seen)
        # The last sequence leaves the batch right after its final output is sent.
        deadline = time.monotonic() + 5
        while engine.counts.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.counts == EngineCounts(waiting=0, active=0, max_active=SEQUENCES)
    finally:
        engine.close()


def test_request_metrics_use_tensorrt_llm_s_request_types() -> None:
    counts = EngineCounts(waiting=3, active=8, max_active=8)
    assert counts.request_metrics() == {"waiting": 3, "active": 8, "scheduled": 8, "max": 8}
