from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from tests.api.fakes import FakeBackend
from tests.api.test_chat import sse_events

COMPLETIONS = "/v1/completions"


def test_single_prompt(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(COMPLETIONS, json={"model": "tiny-chat", "prompt": "Once"}).json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == backend.reply
    assert body["choices"][0]["finish_reason"] == "stop"
    assert backend.requests[-1].prompt == "Once"
    assert backend.requests[-1].params.max_tokens == 16


def test_prompt_list_and_n_index_choices_and_ids(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(
        COMPLETIONS, json={"model": "tiny-chat", "prompt": ["A", "B"], "n": 2, "seed": 5}
    ).json()
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2, 3]
    sent = backend.requests[-4:]
    assert [r.prompt for r in sent] == ["A", "A", "B", "B"]
    assert len({r.request_id for r in sent}) == 4
    assert [r.params.seed for r in sent] == [5, 6, 7, 8]
    # Prompt tokens count once per prompt, completion tokens once per choice.
    assert body["usage"]["prompt_tokens"] == 2 * backend.prompt_tokens
    assert body["usage"]["completion_tokens"] == 4 * 6


def test_echo_prepends_prompt(client: TestClient, backend: FakeBackend) -> None:
    body = client.post(
        COMPLETIONS, json={"model": "tiny-chat", "prompt": "Say:", "echo": True, "max_tokens": 1}
    ).json()
    assert body["choices"][0]["text"] == "Say:Hello"
    assert body["choices"][0]["finish_reason"] == "length"


def test_streaming_with_usage(client: TestClient, backend: FakeBackend) -> None:
    payload = {
        "model": "tiny-chat",
        "prompt": "x",
        "stream": True,
        "n": 2,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", COMPLETIONS, json=payload) as response:
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    for index in (0, 1):
        text = "".join(
            c["choices"][0]["text"]
            for c in chunks
            if c["choices"] and c["choices"][0]["index"] == index
        )
        assert text == backend.reply
    finishes = [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finishes == ["stop", "stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": "end"}, "suffix"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": []}, "prompt"),
    ],
)
def test_refused_options(client: TestClient, extra: dict[str, object], param: str) -> None:
    response = client.post(COMPLETIONS, json={"model": "tiny-chat", "prompt": "x", **extra})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_missing_prompt(client: TestClient) -> None:
    response = client.post(COMPLETIONS, json={"model": "tiny-chat"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"
