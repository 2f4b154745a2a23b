"""Conformance: OpenAI parameters through the official SDK (sync and async, streamed and not)
against the real Triton-backed server. Each test names the parameter it drives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CHAT_MODEL = "tiny-chat"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
COUNT = [{"role": "user", "content": "Count from 1 to 10"}]


@pytest.fixture
def sdk(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0) as c:
        yield c


def run_async(stack: Stack, call: Any) -> Any:
    async def main() -> Any:
        async with openai.AsyncOpenAI(
            base_url=f"{stack.api_url}/v1", api_key=stack.api_key, max_retries=0
        ) as client:
            return await call(client)

    return asyncio.run(main())


def chat(sdk: openai.OpenAI, stream: bool, **options: Any) -> tuple[list[str], list[str], Any]:
    """Texts and finish reasons per choice, and the usage, streamed or not."""
    options.setdefault("messages", FRANCE)
    if not stream:
        done = sdk.chat.completions.create(model=CHAT_MODEL, **options)
        return (
            [c.message.content or "" for c in done.choices],
            [c.finish_reason for c in done.choices],
            done.usage,
        )
    n = options.get("n", 1)
    texts, reasons, usage = [""] * n, [""] * n, None
    chunks = sdk.chat.completions.create(
        model=CHAT_MODEL, stream=True, stream_options={"include_usage": True}, **options
    )
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            reasons[choice.index] = choice.finish_reason or reasons[choice.index]
    return texts, reasons, usage


@pytest.mark.parametrize("stream", [False, True])
class TestChatParameters:
    def test_temperature_zero_is_deterministic(self, sdk: openai.OpenAI, stream: bool) -> None:
        first, _, _ = chat(sdk, stream, temperature=0)
        second, _, _ = chat(sdk, stream, temperature=0)
        assert first == second and "Paris" in first[0]

    def test_seed_reproduces_sampling(self, sdk: openai.OpenAI, stream: bool) -> None:
        options = {"messages": COUNT, "temperature": 1.5, "top_p": 1.0, "max_tokens": 12}
        first, _, _ = chat(sdk, stream, seed=1234, **options)
        second, _, _ = chat(sdk, stream, seed=1234, **options)
        assert first == second

    def test_max_tokens_and_max_completion_tokens(self, sdk: openai.OpenAI, stream: bool) -> None:
        _, reasons, usage = chat(sdk, stream, messages=COUNT, temperature=0, max_tokens=4)
        assert reasons == ["length"] and usage.completion_tokens == 4
        _, reasons, usage = chat(
            sdk, stream, messages=COUNT, temperature=0, max_completion_tokens=2
        )
        assert reasons == ["length"] and usage.completion_tokens == 2

    def test_stop_string_and_list(self, sdk: openai.OpenAI, stream: bool) -> None:
        (full,), _, _ = chat(sdk, stream, messages=COUNT, temperature=0)
        (cut,), reasons, _ = chat(sdk, stream, messages=COUNT, temperature=0, stop=", 4")
        assert cut == full.split(", 4")[0] and reasons == ["stop"]
        (cut,), _, _ = chat(sdk, stream, messages=COUNT, temperature=0, stop=["7", ", 3"])
        assert cut == full.split(", 3")[0]

    def test_n_choices(self, sdk: openai.OpenAI, stream: bool) -> None:
        texts, reasons, usage = chat(sdk, stream, n=3, temperature=0)
        assert len(texts) == 3 and all("Paris" in t for t in texts)
        assert reasons == ["stop"] * 3
        assert usage.completion_tokens == 3 * (usage.completion_tokens // 3)

    def test_top_p_top_k_penalties_user(self, sdk: openai.OpenAI, stream: bool) -> None:
        texts, reasons, usage = chat(
            sdk,
            stream,
            temperature=0.7,
            top_p=0.9,
            presence_penalty=0.5,
            frequency_penalty=0.5,
            user="conformance-suite",
            seed=7,
            extra_body={"top_k": 20, "repetition_penalty": 1.1, "min_tokens": 3},
        )
        assert texts[0] and reasons[0] in {"stop", "length"} and usage.completion_tokens >= 3

    def test_system_developer_and_content_parts(self, sdk: openai.OpenAI, stream: bool) -> None:
        messages = [
            {"role": "developer", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the capital of Japan?"}],
            },
        ]
        (text,), _, _ = chat(sdk, stream, messages=messages, temperature=0)
        assert "Tokyo" in text

    def test_unknown_fields_are_accepted(self, sdk: openai.OpenAI, stream: bool) -> None:
        (text,), _, _ = chat(sdk, stream, temperature=0, extra_body={"brand_new_option": True})
        assert "Paris" in text


def test_system_fingerprint_and_ids(sdk: openai.OpenAI) -> None:
    done = sdk.chat.completions.create(model=CHAT_MODEL, messages=FRANCE, temperature=0)
    assert done.system_fingerprint and done.id.startswith("chatcmpl-")
    chunks = list(sdk.chat.completions.create(model=CHAT_MODEL, messages=FRANCE, stream=True))
    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.system_fingerprint for c in chunks)


def test_async_chat_stream_and_not(stack: Stack) -> None:
    async def call(client: openai.AsyncOpenAI) -> tuple[str, str]:
        done = await client.chat.completions.create(
            model=CHAT_MODEL, messages=FRANCE, temperature=0
        )
        stream = await client.chat.completions.create(
            model=CHAT_MODEL, messages=FRANCE, temperature=0, stream=True
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return done.choices[0].message.content or "", streamed

    done, streamed = run_async(stack, call)
    assert done == streamed and "Paris" in done


@pytest.mark.parametrize("stream", [False, True])
def test_completions_prompt_list_echo_n(sdk: openai.OpenAI, stream: bool) -> None:
    prompts = ["Once upon a time", "Once upon a time"]
    options: dict[str, Any] = {"model": CHAT_MODEL, "prompt": prompts, "n": 2, "max_tokens": 8}
    options |= {"echo": True, "temperature": 0, "stop": ["\n"]}
    if stream:
        texts = [""] * 4
        for chunk in sdk.completions.create(stream=True, **options):
            for choice in chunk.choices:
                texts[choice.index] += choice.text
    else:
        done = sdk.completions.create(**options)
        texts = [choice.text for choice in done.choices]
        assert done.usage is not None and done.usage.completion_tokens > 0
    assert len(texts) == 4
    assert all(text.startswith("Once upon a time") for text in texts)
    assert len(set(texts)) == 1


def test_async_completion(stack: Stack) -> None:
    async def call(client: openai.AsyncOpenAI) -> str:
        done = await client.completions.create(
            model=CHAT_MODEL, prompt="Once upon a time", max_tokens=10, temperature=0
        )
        return done.choices[0].text

    assert run_async(stack, call).strip()


def test_model_retrieve(sdk: openai.OpenAI) -> None:
    model = sdk.models.retrieve(CHAT_MODEL)
    assert model.id == CHAT_MODEL
    assert model.context_length == 1024


@pytest.mark.parametrize(
    "options",
    [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}],
                }
            ]
        },
        {"messages": FRANCE, "temperature": 5},
        {"messages": FRANCE, "n": 0},
    ],
)
def test_invalid_or_unsupported_is_400(sdk: openai.OpenAI, options: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=CHAT_MODEL, **options)
    assert caught.value.status_code == 400


def test_suffix_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        sdk.completions.create(model=CHAT_MODEL, prompt="def f(", suffix="return 1")


def test_websocket_streams_the_same_chunks(stack: Stack, sdk: openai.OpenAI) -> None:
    expected = sdk.chat.completions.create(model=CHAT_MODEL, messages=FRANCE, temperature=0)
    url = stack.api_url.replace("http://", "ws://") + "/v1/chat/completions/ws"
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with connect(url, additional_headers=headers) as ws:
        ws.send(json.dumps({"model": CHAT_MODEL, "messages": FRANCE, "temperature": 0}))
        chunks = []
        while (message := ws.recv()) != "[DONE]":
            chunks.append(json.loads(message))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == expected.choices[0].message.content


def test_embeddings_text_tokens_base64_and_dimensions(sdk: openai.OpenAI) -> None:
    model = "all-minilm-l6-v2"
    # [CLS] hello world [SEP] in MiniLM's own vocabulary equals the text "hello world".
    by_text = sdk.embeddings.create(model=model, input="hello world", encoding_format="float")
    by_ids = sdk.embeddings.create(model=model, input=[[101, 7592, 2088, 102]])
    assert (
        sum(a * b for a, b in zip(by_text.data[0].embedding, by_ids.data[0].embedding, strict=True))
        > 0.9999
    )
    # The SDK asks for base64 by default and decodes it: the vectors must be the same.
    default = sdk.embeddings.create(model=model, input="hello world")
    assert default.data[0].embedding == pytest.approx(by_text.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.BadRequestError):
        sdk.embeddings.create(model=model, input="hello", dimensions=128)


@pytest.mark.parametrize("stream", [False, True])
def test_response_format_json_schema_parses_and_validates(sdk: openai.OpenAI, stream: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")
    schema = {
        "type": "object",
        # Bounded strings: the grammar itself must close the object, whatever the model says.
        "properties": {
            "country": {"type": "string", "maxLength": 24},
            "capital": {"type": "string", "maxLength": 24},
        },
        "required": ["country", "capital"],
        "additionalProperties": False,
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "capital", "schema": schema, "strict": True},
    }
    messages = [{"role": "user", "content": "Answer in JSON: What is the capital of France?"}]
    (text,), reasons, _ = chat(
        sdk, stream, messages=messages, temperature=0, max_tokens=64, response_format=fmt
    )
    assert reasons == ["stop"]
    jsonschema.validate(json.loads(text), schema)
    (obj,), _, _ = chat(
        sdk,
        stream,
        messages=messages,
        temperature=0,
        max_tokens=64,
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(obj), dict)


def test_logprobs_and_top_logprobs(sdk: openai.OpenAI) -> None:
    done = sdk.chat.completions.create(
        model=CHAT_MODEL, messages=FRANCE, temperature=0, logprobs=True, top_logprobs=3
    )
    content = done.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and all(entry.logprob <= 0 for entry in content)
    assert all(len(entry.top_logprobs) == 3 for entry in content)
    # Greedy: the chosen token is the most likely alternative.
    assert all(
        entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-4) for entry in content
    )
    assert (
        bytes(b for entry in content for b in (entry.bytes or [])).decode()
        == done.choices[0].message.content
    )


def test_logit_bias_changes_the_reply(sdk: openai.OpenAI) -> None:
    plain = sdk.chat.completions.create(
        model=CHAT_MODEL, messages=FRANCE, temperature=0, logprobs=True
    )
    first = plain.choices[0].logprobs.content[0]  # type: ignore[union-attr]
    banned = sdk.chat.completions.create(
        model=CHAT_MODEL, messages=FRANCE, temperature=0, logit_bias={"2": -100}, max_tokens=8
    )
    # Token 2 is <|im_end|>: banning it means the reply cannot end before max_tokens.
    assert banned.choices[0].finish_reason == "length"
    assert first.token


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 24}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_tools_forced_choice_returns_tool_calls(sdk: openai.OpenAI, stream: bool) -> None:
    options: dict[str, Any] = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "temperature": 0,
        "max_tokens": 64,
    }
    if not stream:
        choice = sdk.chat.completions.create(**options).choices[0]
        calls = choice.message.tool_calls or []
        name, arguments, reason = (
            calls[0].function.name,
            calls[0].function.arguments,
            choice.finish_reason,
        )
    else:
        name, arguments, reason = "", "", ""
        for chunk in sdk.chat.completions.create(stream=True, **options):
            delta = chunk.choices[0].delta if chunk.choices else None
            for call in (delta.tool_calls or []) if delta else []:
                name += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            if chunk.choices and chunk.choices[0].finish_reason:
                reason = chunk.choices[0].finish_reason
    # OpenAI ends a call forced by name with "stop" (vllm-project/vllm#25054 lists its replies).
    assert name == "get_weather" and reason == "stop"
    assert set(json.loads(arguments)) == {"city"}


def test_tools_auto_with_a_plain_question_answers_in_text(sdk: openai.OpenAI) -> None:
    choice = sdk.chat.completions.create(
        model=CHAT_MODEL, messages=FRANCE, tools=[WEATHER_TOOL], tool_choice="auto", temperature=0
    ).choices[0]
    assert choice.message.content and choice.finish_reason in {"stop", "length"}
