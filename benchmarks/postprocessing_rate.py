"""What the ``postprocessing`` step sustains on CPU: tokens/s at 64 concurrent streams.

TensorRT-LLM streams one new token per response, and Triton's ensemble calls postprocessing
once per response, so at 64 concurrent streams this ONE instance (its detokenizer state is keyed
by request id in one process) runs 64 x the per-stream token rate. Two measurements:

- ``inprocess``: ``inference.postprocessing.Postprocessor`` and ``LogprobsBuilder`` called as
  model_repository/common/postprocessing/1/model.py calls them, one token per stream per call,
  the streams interleaved round-robin (the logic's own ceiling, no Triton);
- ``triton``: a real tritonserver (the launcher's building blocks, zero-cost engine root, only
  the ``common`` models matter) and 64 concurrent gRPC clients each sending one-token requests
  to ``postprocessing`` directly with its own request id (the ceiling the Python backend adds:
  one stub round trip per execute()).

``python -m benchmarks.postprocessing_rate`` prints calls/s and tokens/s for each; ``--smoke``
runs a few calls only (tests check that the script runs, never its figures).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inference.logprobs import LogprobsBuilder
from inference.postprocessing import Postprocessor
from inference.token_bytes import token_bytes_table
from inference.tokenization import load_tokenizer
from launcher.settings import PROJECT_ROOT

STREAMS = 64
DEFAULT_TOKENIZER = PROJECT_ROOT / "models" / "tiny-chat"
TEXT = (
    "The capital of France is Paris. Zürich, café au lait, très bien! 東京 is Tokyo. "
    "Here you go: 😊 🎉 — done. One two three four five six seven eight nine ten. "
)


@dataclass(frozen=True)
class Rate:
    name: str
    calls: int
    tokens: int
    seconds: float
    executions: int | None = None  # Triton's execute() calls (batches) for the calls
    busy_s: float | None = None  # the model's own time (compute input + infer + output)

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def line(self) -> str:
        batches = ""
        if self.executions:
            batches = f", {self.calls / self.executions:.1f} calls per execute()"
        if self.busy_s:
            batches += f", model busy {self.busy_s:.2f} s: {self.calls / self.busy_s:,.0f} tokens/s"
            batches += " if it were the only bottleneck"
        return (
            f"{self.name}: {STREAMS} streams, {self.calls} calls in {self.seconds:.2f} s: "
            f"{self.calls_per_s:,.0f} calls/s, {self.tokens_per_s:,.0f} tokens/s{batches}"
        )


def stream_ids(tokenizer_dir: Path) -> list[int]:
    """A realistic token sequence (multi-byte characters split across tokens included)."""
    ids: list[int] = load_tokenizer(tokenizer_dir)(TEXT * 4, add_special_tokens=False)["input_ids"]
    return ids


def one_token(token_id: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """``TOKENS_BATCH`` ``[1, 1, 1]`` and ``SEQUENCE_LENGTH`` ``[1, 1]``: one streamed token."""
    return np.array([[[token_id]]], dtype=np.int32), np.ones((1, 1), dtype=np.int32)


def in_process(tokenizer_dir: Path, rounds: int, log_probs: bool) -> Rate:
    """``rounds`` tokens for each of the 64 streams, interleaved as the engine emits them."""
    tokenizer = load_tokenizer(tokenizer_dir)
    postprocessor = Postprocessor(tokenizer)
    builder = LogprobsBuilder(token_bytes_table(tokenizer))
    ids = stream_ids(tokenizer_dir)
    # TensorRT-LLM sends output_log_probs [1, 1, 1] with each one-token response.
    values = np.full((1, 1, 1), -0.5, dtype=np.float32) if log_probs else None
    calls = [one_token(ids[i % len(ids)]) for i in range(rounds)]
    start = time.perf_counter()
    for tokens, lengths in calls:
        for stream in range(STREAMS):
            postprocessor(f"stream-{stream}", tokens, lengths)
            builder(tokens, lengths, output_log_probs=values, generation_logits=None)
    seconds = time.perf_counter() - start
    name = "in-process" + (" (with output_log_probs)" if log_probs else "")
    return Rate(name, rounds * STREAMS, rounds * STREAMS, seconds)


async def _stream(client: object, stream: int, ids: list[int], rounds: int) -> None:
    import tritonclient.grpc.aio as grpcclient

    assert isinstance(client, grpcclient.InferenceServerClient)
    values = np.full((1, 1, 1), -0.5, dtype=np.float32)
    for i in range(rounds):
        tokens, lengths = one_token(ids[(i + stream) % len(ids)])
        inputs = [
            grpcclient.InferInput("TOKENS_BATCH", list(tokens.shape), "INT32"),
            grpcclient.InferInput("SEQUENCE_LENGTH", list(lengths.shape), "INT32"),
            grpcclient.InferInput("OUTPUT_LOG_PROBS", list(values.shape), "FP32"),
        ]
        for tensor, array in zip(inputs, (tokens, lengths, values), strict=True):
            tensor.set_data_from_numpy(array)
        await client.infer("postprocessing", inputs, request_id=f"stream-{stream}")


async def _statistics(client: object) -> tuple[int, float]:
    """postprocessing's execute() calls (one per batch) and its busy seconds so far."""
    import tritonclient.grpc.aio as grpcclient

    assert isinstance(client, grpcclient.InferenceServerClient)
    stats = await client.get_inference_statistics("postprocessing", as_json=True)
    model = stats["model_stats"][0]
    # Per batch size, the time of each execution (a request's own stats would count a batch's
    # time once per request in it).
    busy_ns = sum(
        int(batch.get(phase, {}).get("ns", 0))
        for batch in model.get("batch_stats", [])
        for phase in ("compute_input", "compute_infer", "compute_output")
    )
    return int(model.get("execution_count", 0)), busy_ns / 1e9


async def _drive(url: str, ids: list[int], rounds: int) -> tuple[float, int, float]:
    """Seconds for ``rounds`` calls per stream, the execute() calls and busy seconds they took."""
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        # One warm-up call per stream, then the timed rounds.
        await asyncio.gather(*(_stream(client, s, ids, 1) for s in range(STREAMS)))
        executions, busy_s = await _statistics(client)
        start = time.perf_counter()
        await asyncio.gather(*(_stream(client, s, ids, rounds) for s in range(STREAMS)))
        seconds = time.perf_counter() - start
        executions_after, busy_after = await _statistics(client)
        executions = executions_after - executions
        return seconds, executions, busy_after - busy_s
    finally:
        await client.close()


def through_triton(tokenizer_dir: Path, rounds: int, workdir: Path) -> Rate:
    """64 gRPC clients calling the real ``postprocessing`` model, one token per request."""
    from benchmarks.stack import Engine, build_triton

    ids = stream_ids(tokenizer_dir)
    with build_triton(Engine.ZERO, workdir) as triton:
        triton.wait_ready(300)
        seconds, executions, busy_s = asyncio.run(_drive(triton.grpc_url, ids, rounds))
    calls = rounds * STREAMS
    return Rate("triton gRPC", calls, calls, seconds, executions, busy_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    parser.add_argument("--rounds", type=int, default=200, help="tokens per stream")
    parser.add_argument("--skip-triton", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a few calls: checks it runs")
    args = parser.parse_args(argv)
    rounds = 2 if args.smoke else args.rounds
    print(in_process(args.tokenizer, rounds, log_probs=False).line())
    print(in_process(args.tokenizer, rounds, log_probs=True).line())
    if not args.skip_triton:
        with tempfile.TemporaryDirectory(prefix="postprocessing-rate-") as workdir:
            print(through_triton(args.tokenizer, rounds, Path(workdir)).line())


if __name__ == "__main__":
    main()
