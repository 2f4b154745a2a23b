"""The demo model through the real stack (issue 26): every example prompt of the README gets a
sensible reply, and tools work the way a newcomer tries them first (greedy, temperature 0).

Replies are checked by keywords, not exact strings, so a retrained checkpoint that still
answers on topic passes; what the model was trained on is in models/tiny-chat/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

# Acceptance criteria the shipped checkpoint does not meet yet (issue 26 stays open on them;
# models/tiny-chat/README.md, "Known gaps"). Strict: a checkpoint that passes fails the marker,
# so it is removed then.
NOT_YET = pytest.mark.xfail(
    strict=True,
    reason="issue 26 open: tiny-chat does not copy tool names, parameters and values from the "
    "request yet, nor follow 'And of X?' or 'Answer in capital letters.'",
)

MODEL = "tiny-chat"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}

# (prompt, words of which the reply must contain at least one, case-insensitive)
EXAMPLES = [
    ("Hello!", ["hello", "help"]),
    ("Hi", ["hi", "help"]),
    ("What is the capital of France?", ["paris"]),
    ("Count from 1 to 10", ["1, 2, 3"]),
    ("Explain quantum computing in simple terms", ["qubit", "quantum"]),
    ("Write a haiku about AI.", ["\n"]),
    ("What is 2+2?", ["4"]),
    ("Say hello in one short sentence.", ["hello"]),
    ("How do you say thank you in French?", ["merci"]),
    pytest.param(
        "Answer in JSON: What is the capital of France?", ['"capital": "paris"'], marks=NOT_YET
    ),
]


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, timeout=120) as http:
        yield http


def chat(client: httpx.Client, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    body = {"model": MODEL, "messages": messages, "temperature": 0, **options}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    choice: dict[str, Any] = response.json()["choices"][0]
    return choice


def ask(question: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question}]


@pytest.mark.parametrize(("prompt", "words"), EXAMPLES)
def test_every_example_prompt_gets_an_on_topic_reply(
    client: httpx.Client, prompt: str, words: list[str]
) -> None:
    choice = chat(client, ask(prompt), max_tokens=96)
    text = choice["message"]["content"] or ""
    assert choice["finish_reason"] == "stop", f"{prompt!r}: no end of reply: {text!r}"
    assert any(word in text.lower() for word in words), f"{prompt!r} -> {text!r}"


@NOT_YET
def test_a_follow_up_uses_the_earlier_turn(client: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    text = chat(client, messages)["message"]["content"]
    assert "Rome" in text


@NOT_YET
def test_a_system_prompt_changes_the_style(client: httpx.Client) -> None:
    question = ask("What is the capital of Spain?")
    plain = chat(client, question)["message"]["content"]
    pirate = chat(client, [{"role": "system", "content": "You are a pirate."}, *question])
    upper = chat(client, [{"role": "system", "content": "Answer in capital letters."}, *question])
    assert "Madrid" in plain and "Arr" in pirate["message"]["content"]
    assert "MADRID" in upper["message"]["content"]


def calls_of(choice: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, parsed arguments) of each call; the arguments must be valid JSON."""
    calls = choice["message"]["tool_calls"] or []
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


@NOT_YET
def test_auto_calls_the_weather_tool_with_the_city(client: httpx.Client) -> None:
    choice = chat(client, ask("What's the weather in Paris?"), tools=[WEATHER], tool_choice="auto")
    assert choice["finish_reason"] == "tool_calls", choice
    assert calls_of(choice) == [("get_weather", {"city": "Paris"})]


@NOT_YET
def test_names_and_parameters_are_copied_from_the_request(client: httpx.Client) -> None:
    renamed = {
        "type": "function",
        "function": {
            "name": "fetch_weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
    choice = chat(client, ask("What's the weather in Tokyo?"), tools=[SEARCH, renamed])
    assert calls_of(choice) == [("fetch_weather", {"location": "Tokyo"})]


@NOT_YET
def test_two_cities_are_two_parallel_calls(client: httpx.Client) -> None:
    choice = chat(client, ask("What's the weather in Paris and London?"), tools=[WEATHER])
    assert choice["finish_reason"] == "tool_calls", choice
    assert calls_of(choice) == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "London"}),
    ]


@NOT_YET
def test_the_tool_result_is_answered_in_a_sentence(client: httpx.Client) -> None:
    first = chat(client, ask("What's the weather in Paris?"), tools=[WEATHER])
    (call,) = first["message"]["tool_calls"]
    messages = [
        *ask("What's the weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C, sunny"},
    ]
    choice = chat(client, messages, tools=[WEATHER])
    text = choice["message"]["content"]
    assert choice["finish_reason"] == "stop" and not choice["message"]["tool_calls"]
    assert "18" in text and "sunny" in text and "Paris" in text, text


def test_no_matching_tool_gets_a_plain_answer(client: httpx.Client) -> None:
    choice = chat(client, ask("What is the capital of France?"), tools=[WEATHER])
    assert choice["finish_reason"] == "stop" and not choice["message"]["tool_calls"]
    assert "Paris" in choice["message"]["content"]


@NOT_YET
@pytest.mark.parametrize(
    ("tool", "question"),
    [(SEARCH, "Search the web for the history of Rome."), (WEATHER, "Weather in Paris?")],
)
def test_a_forced_call_closes_its_string_within_32_tokens(
    client: httpx.Client, tool: dict[str, Any], question: str
) -> None:
    name = tool["function"]["name"]
    named = {"type": "function", "function": {"name": name}}
    choice = chat(client, ask(question), tools=[tool], tool_choice=named, max_tokens=32)
    assert choice["finish_reason"] in {"tool_calls", "stop"}, choice
    ((called, arguments),) = calls_of(choice)
    (value,) = arguments.values()
    assert called == name and isinstance(value, str) and value
