"""What grpc-python costs the API per Triton response: one reply streamed token by token from
Triton (as the API asks for every reply, streamed or not) against the same reply as one
response (the ensemble's ``stream`` input false).

``python -m benchmarks.grpc_messages [--engine zero|cpu] [--requests 200] [--max-tokens 40]``.
One client in this process sends the API's own request message (``build_generation_request``)
on one reused bidirectional stream, one request at a time, and parses every response as the
API does; the figure is this process's CPU per request (``time.process_time``), with the API's
``GRPC_EXPERIMENTS``. Issue 27: this is most of the API's CPU per non-streamed request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from api.backend.ensemble import build_generation_request, parse_generation_response
from api.backend.types import GenerationRequest, SamplingParams
from benchmarks.stack import Engine, build_triton

# grpc only after ``api`` (imported above) has set GRPC_EXPERIMENTS, as in the API process.
import grpc  # isort: skip
from tritonclient.grpc import service_pb2, service_pb2_grpc  # isort: skip

MESSAGES = json.dumps([{"role": "user", "content": "Hello!"}])


@dataclass(frozen=True)
class Result:
    triton_streams: bool
    cpu_us_per_request: float
    responses_per_request: int
    completion_tokens: int


def request_message(index: int, max_tokens: int, stream: bool) -> service_pb2.ModelInferRequest:
    request = GenerationRequest(
        request_id=f"grpc-messages-{index}",
        triton_model="ensemble",
        params=SamplingParams(max_tokens=max_tokens),
        messages_json=MESSAGES,
    )
    message = build_generation_request(request)
    names = [tensor.name for tensor in message.inputs]
    message.raw_input_contents[names.index("stream")] = b"\x01" if stream else b"\x00"
    return message


async def run(url: str, requests: int, max_tokens: int, stream: bool) -> Result:
    async with grpc.aio.insecure_channel(url) as channel:
        call = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer()

        async def one(index: int) -> tuple[int, int]:
            await call.write(request_message(index, max_tokens, stream))
            responses = tokens = 0
            while True:
                reply = await call.read()
                if reply is grpc.aio.EOF or reply.error_message:
                    raise RuntimeError(f"the stream failed: {reply}")
                chunk = parse_generation_response(reply.infer_response)
                responses += 1
                tokens += chunk.completion_tokens
                if chunk.final:
                    return responses, tokens

        for index in range(5):  # warm: the stream, the model's caches
            await one(-1 - index)
        start = time.process_time()
        for index in range(requests):
            responses, tokens = await one(index)
        cpu = time.process_time() - start
        call.cancel()
    return Result(stream, round(cpu / requests * 1e6, 1), responses, tokens)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=Engine, default=Engine.ZERO, choices=list(Engine))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=40)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="grpc-messages-") as workdir,
        build_triton(args.engine, Path(workdir)) as triton,
    ):
        triton.wait_ready(300)
        # Alternated, so that drift on a shared host hits both alike.
        for stream in (True, False, True, False):
            result = asyncio.run(run(triton.grpc_url, args.requests, args.max_tokens, stream))
            print(json.dumps(result.__dict__), flush=True)


if __name__ == "__main__":
    main()
