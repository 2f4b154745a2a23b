"""The floor proxy must ask Triton for exactly what the API asks for, or it measures nothing."""

from __future__ import annotations

import orjson

from api.backend.ensemble import build_generation_request
from api.generation.translate import chat_to_generation
from api.schemas.chat import ChatCompletionRequest
from api.settings import ModelKind, ServedModel
from benchmarks.floor_proxy import chunk, generation_request

MODEL = ServedModel(id="tiny-chat", kind=ModelKind.CHAT, triton_model="ensemble")


def genai_perf_body(**extra: object) -> dict[str, object]:
    """What genai-perf's chat endpoint sends with the benchmark's extra inputs."""
    return {
        "model": "tiny-chat",
        "messages": [{"role": "user", "content": "How far is the moon?"}],
        "stream": True,
        "max_tokens": 16,
        "min_tokens": 16,
        "temperature": 0.0,
        **extra,
    }


def test_the_floor_sends_the_apis_tensors() -> None:
    body = genai_perf_body()
    from_api = build_generation_request(
        chat_to_generation(ChatCompletionRequest.model_validate(body), MODEL, "fixed")
    )
    from_floor = build_generation_request(generation_request(body, "ensemble"))
    from_floor.id = from_api.id
    assert from_floor == from_api


def test_the_floor_follows_the_bodys_sampling_options() -> None:
    request = generation_request(genai_perf_body(max_tokens=5, min_tokens=0), "ensemble")
    assert (request.params.max_tokens, request.params.min_tokens) == (5, 0)
    assert request.params.temperature == 0.0
    assert generation_request(genai_perf_body(temperature=None), "x").params.temperature == 1.0


def test_chunks_are_openai_sse_frames_and_the_first_carries_the_role() -> None:
    first, later = chunk("r1", "tiny-chat", "Hi", True), chunk("r1", "tiny-chat", " there", False)
    assert first.startswith(b"data: ") and first.endswith(b"\n\n")
    payload = orjson.loads(first.removeprefix(b"data: "))
    assert payload["object"] == "chat.completion.chunk"
    assert payload["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    assert orjson.loads(later.removeprefix(b"data: "))["choices"][0]["delta"] == {
        "content": " there"
    }
