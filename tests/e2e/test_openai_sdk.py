"""The official openai SDK against the real Triton-backed server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CHAT_MODEL = "tiny-chat"
EMBEDDING_MODEL = "all-minilm-l6-v2"


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def async_client(stack: Stack) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0)


def ask(
    client: openai.OpenAI, question: str, **options: object
) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": question}],
        **options,  # type: ignore[arg-type]
    )


def streamed_text(client: openai.OpenAI, question: str, **options: object) -> tuple[str, list[str]]:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": question}],
        stream=True,
        **options,  # type: ignore[arg-type]
    )
    deltas: list[str] = []
    reasons: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            deltas.append(choice.delta.content or "")
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    return "".join(deltas), reasons


def test_chat_answers_readable_text(client: openai.OpenAI) -> None:
    completion = ask(client, "What is the capital of France?", temperature=0)
    choice = completion.choices[0]
    assert "Paris" in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 5
    assert 0 < completion.usage.completion_tokens < 64
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


@pytest.mark.parametrize(
    "question",
    ["What is the capital of Japan?", "Count from 1 to 10", "Repeat after me: café crème 日本 🚀"],
)
def test_stream_deltas_concatenate_to_the_full_reply(client: openai.OpenAI, question: str) -> None:
    full = ask(client, question, temperature=0).choices[0].message.content
    text, reasons = streamed_text(client, question, temperature=0)
    assert text == full
    assert reasons == ["stop"]


def test_max_tokens_cut_is_length_with_real_token_count(client: openai.OpenAI) -> None:
    completion = ask(client, "Count from 1 to 10", temperature=0, max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    _, reasons = streamed_text(client, "Count from 1 to 10", temperature=0, max_tokens=3)
    assert reasons == ["length"]


def test_stream_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Hello!"}],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_stop_sequence_is_honoured(client: openai.OpenAI) -> None:
    full = ask(client, "Count from 1 to 10", temperature=0).choices[0].message.content or ""
    assert "3" in full
    cut = ask(client, "Count from 1 to 10", temperature=0, stop=["3"]).choices[0]
    assert cut.message.content == full.split("3", 1)[0]
    assert cut.finish_reason == "stop"


def test_concurrent_streams(async_client: openai.AsyncOpenAI) -> None:
    async def one(question: str) -> str:
        stream = await async_client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": question}],
            stream=True,
            temperature=0,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    questions = [f"What is the capital of {c}?" for c in ["France", "Japan", "Italy", "Spain"]]

    async def main() -> list[str]:
        try:
            return await asyncio.gather(*(one(q) for q in questions))
        finally:
            await async_client.close()

    answers = asyncio.run(main())
    assert "Paris" in answers[0] and "Tokyo" in answers[1]


def test_embeddings_dimension_and_self_cosine(client: openai.OpenAI) -> None:
    texts = ["A cat sits on the mat.", "A cat sits on the mat.", "Quarterly GPU revenue grew."]
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=texts)
    vectors = np.array([item.embedding for item in response.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-5)
    assert float(vectors[0] @ vectors[2]) < 0.5
    assert response.usage.prompt_tokens > 0
    floats = client.embeddings.create(
        model=EMBEDDING_MODEL, input=texts[0], encoding_format="float"
    )
    assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-6)


def test_models_listed(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {CHAT_MODEL, EMBEDDING_MODEL} <= ids


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 404


def test_prompt_over_context_is_400_context_length_exceeded(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "word " * 3000, max_tokens=10)
    body = caught.value.body
    assert isinstance(body, dict) and body.get("code") == "context_length_exceeded"


def test_bad_json_is_400_not_500(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.api_url}/v1/chat/completions",
        content=b'{"model": "tiny-chat", "messages": [',
        headers={"content-type": "application/json", "Authorization": f"Bearer {stack.api_key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_ready(stack: Stack) -> None:
    ready = httpx.get(f"{stack.api_url}/health/ready").json()
    assert ready["status"] == "ready"
    assert ready["models"] == {"embedding": True, "ensemble": True}
