"""The content filter on prompts (400 ``content_filter``) and on streamed replies."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from api.app import create_app
from api.backend.types import GenerationChunk
from api.generation.assembly import ReplyState
from api.moderation.filters import CombinedFilter, PatternFilter
from api.moderation.model import ModelFilter
from api.moderation.stream import OutputGuard, guarded
from api.settings import ContentPattern, ModerationSettings, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
RULES = [
    {"category": "self-harm", "pattern": r"hurt\s+myself"},
    {"category": "violence", "pattern": r"how\s+can"},
]


def app_client(backend: FakeBackend, **moderation: Any) -> TestClient:
    settings = Settings(moderation=ModerationSettings(**{"patterns": RULES, **moderation}))
    return TestClient(create_app(settings, backend_factory=lambda _: backend), headers=AUTH)


@pytest.fixture
def filtered(backend: FakeBackend) -> Iterator[TestClient]:
    with app_client(backend) as client:
        yield client


def sse_payloads(text: str) -> list[str]:
    return [frame.removeprefix("data: ") for frame in text.split("\n\n") if frame]


# --- the pattern filter ---------------------------------------------------------------


async def test_patterns_are_case_insensitive_and_locate_the_match() -> None:
    rules = PatternFilter([ContentPattern.model_validate(rule) for rule in RULES])
    verdict = await rules.check("I want to HURT   Myself")
    assert verdict.flagged and verdict.flagged_categories() == ["self-harm"]
    assert verdict.scores == {"self-harm": 1.0, "violence": 0.0}
    assert verdict.start == 10
    clean = await rules.check("a calm sentence")
    assert not clean.flagged and clean.start is None
    assert clean.categories == {"self-harm": False, "violence": False}


def test_invalid_pattern_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="invalid pattern"):
        ModerationSettings(patterns=[{"category": "x", "pattern": "(unclosed"}])
    with pytest.raises(ValidationError, match="model_categories"):
        ModerationSettings(triton_model="moderation")


# --- the streamed-reply guard ----------------------------------------------------------


async def _run_guard(pieces: Sequence[str], window: int) -> tuple[str, bool]:
    guard = OutputGuard(PatternFilter([ContentPattern(category="c", pattern="forbidden")]), window)
    sent = ""
    for piece in pieces:
        sent += await guard.feed(piece)
    return sent + guard.flush(), guard.filtered


@pytest.mark.parametrize("window", [9, 12, 64])
async def test_a_match_split_anywhere_across_chunks_is_never_sent(window: int) -> None:
    text = "some preamble text, then forbidden words follow"
    for first in range(1, len(text)):
        for second in range(first + 1, len(text), 7):
            pieces = [text[:first], text[first:second], text[second:]]
            sent, flagged = await _run_guard(pieces, window)
            assert flagged
            assert sent == "some preamble text, then ", (first, second)


async def test_clean_text_passes_unchanged_in_token_sized_pieces() -> None:
    text = "nothing to see here, only harmless words " * 5
    sent, flagged = await _run_guard(list(text), window=8)
    assert (sent, flagged) == (text, False)


async def test_guarded_stream_ends_the_reply_and_closes_the_source() -> None:
    closed: list[bool] = []

    async def source() -> AsyncGenerator[GenerationChunk, None]:
        try:
            yield GenerationChunk(prompt_tokens=3)
            for word in ["fine ", "then ", "forbidden ", "more ", "text"]:
                yield GenerationChunk(text=word, completion_tokens=1)
            yield GenerationChunk(final=True)
        finally:
            closed.append(True)

    guard = OutputGuard(PatternFilter([ContentPattern(category="c", pattern="forbidden")]), 4)
    state = ReplyState()
    chunks = [chunk async for chunk in guarded(source(), guard, state)]
    assert "".join(chunk.text for chunk in chunks) == "fine then "
    assert chunks[-1].final and state.content_filtered and closed == [True]
    assert sum(chunk.completion_tokens for chunk in chunks) == 3


# --- prompts --------------------------------------------------------------------------


def test_flagged_chat_prompt_is_refused_before_the_backend_runs(
    filtered: TestClient, backend: FakeBackend
) -> None:
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": [{"type": "text", "text": "I want to Hurt myself"}]},
    ]
    response = filtered.post(CHAT, json={**HELLO, "messages": messages})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "The prompt was filtered because it triggered the content filter "
        "(self-harm). Please modify your prompt and retry.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "content_filter",
    }
    assert backend.requests == []


def test_flagged_completion_prompt_is_refused(filtered: TestClient, backend: FakeBackend) -> None:
    body = {"model": "tiny-chat", "prompt": ["fine", "so how   CAN this be"], "stream": True}
    response = filtered.post("/v1/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"
    assert response.json()["error"]["code"] == "content_filter"
    assert backend.requests == []


def test_input_filter_can_be_turned_off(backend: FakeBackend) -> None:
    with app_client(backend, filter_input=False, filter_output=False) as client:
        response = client.post(
            CHAT, json={**HELLO, "messages": [{"role": "user", "content": "hurt myself"}]}
        )
    assert response.status_code == 200
    assert response.json()["choices"][0]["finish_reason"] == "stop"


# --- replies --------------------------------------------------------------------------


def test_flagged_reply_stops_with_content_filter(
    filtered: TestClient, backend: FakeBackend
) -> None:
    response = filtered.post(CHAT, json=HELLO)
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "Hello there, "
    assert choice["finish_reason"] == "content_filter"
    assert backend.closed_streams == 1
    assert response.json()["usage"]["completion_tokens"] == 4


def test_flagged_stream_never_sends_the_match(backend: FakeBackend) -> None:
    with app_client(backend, stream_window_chars=6) as client:
        payload = {**HELLO, "stream": True, "n": 2}
        with client.stream("POST", CHAT, json=payload) as response:
            payloads = sse_payloads(response.read().decode())
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    for index in (0, 1):
        choices = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        text = "".join(choice["delta"].get("content") or "" for choice in choices)
        assert text == "Hello there, "
        assert choices[-1]["finish_reason"] == "content_filter"
        assert all(choice["finish_reason"] is None for choice in choices[:-1])


def test_flagged_completion_reply(filtered: TestClient) -> None:
    response = filtered.post("/v1/completions", json={"model": "tiny-chat", "prompt": "Hi"})
    choice = response.json()["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("Hello there, ", "content_filter")


def test_clean_reply_is_complete(backend: FakeBackend) -> None:
    backend.reply = "Paris is the capital of France."
    with (
        app_client(backend, stream_window_chars=3) as client,
        client.stream("POST", CHAT, json={**HELLO, "stream": True}) as response,
    ):
        chunks = [json.loads(p) for p in sse_payloads(response.read().decode())[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == backend.reply
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# --- the moderation model -------------------------------------------------------------


class FakeClassifier:
    """Scores every text with a fixed row; remembers what it was asked."""

    def __init__(self, row: list[float]) -> None:
        self.row = row
        self.calls: list[tuple[str, list[str]]] = []
        self.closed = False

    async def classify(self, triton_model: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append((triton_model, list(texts)))
        return np.array([self.row] * len(texts), dtype=np.float32)

    async def close(self) -> None:
        self.closed = True


async def test_model_filter_flags_at_the_threshold() -> None:
    classifier = FakeClassifier([0.2, 0.5])
    model = ModelFilter(classifier, "moderation", ["hate", "violence"], threshold=0.5)
    verdict = await model.check("some text")
    assert verdict.categories == {"hate": False, "violence": True}
    assert verdict.scores == pytest.approx({"hate": 0.2, "violence": 0.5})
    assert verdict.start is None
    assert classifier.calls == [("moderation", ["some text"])]
    combined = CombinedFilter(
        [PatternFilter([ContentPattern(category="hate", pattern="x")]), model]
    )
    both = await combined.check("x marks")
    assert both.categories == {"hate": True, "violence": True} and both.start is None
    await combined.close()
    assert classifier.closed


def test_model_verdict_blocks_a_prompt_and_withholds_a_reply(backend: FakeBackend) -> None:
    with app_client(backend, patterns=[]) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        classifier = FakeClassifier([0.9])
        services.content_filter = ModelFilter(classifier, "moderation", ["hate"], 0.5)
        response = client.post(CHAT, json=HELLO)
        assert response.json()["error"]["code"] == "content_filter"
        services.settings.moderation.filter_input = False
        reply = client.post(CHAT, json=HELLO).json()["choices"][0]
    # A model cannot say where the offending text starts: nothing held back is sent.
    assert reply == {**reply, "finish_reason": "content_filter"}
    assert reply["message"]["content"] == ""


def test_text_after_a_stop_sequence_is_not_filtered(filtered: TestClient) -> None:
    reply = filtered.post(CHAT, json={**HELLO, "stop": [" there"]}).json()["choices"][0]
    assert (reply["message"]["content"], reply["finish_reason"]) == ("Hello", "stop")
    later = filtered.post(CHAT, json={**HELLO, "stop": [" help"]}).json()["choices"][0]
    assert (later["message"]["content"], later["finish_reason"]) == (
        "Hello there, ",
        "content_filter",
    )
