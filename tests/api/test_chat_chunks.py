"""A streamed chat's role chunks and token template are ready before its first token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from api.backend.admission import Admission, model_capacities
from api.backend.types import GenerationChunk, GenerationRequest, SamplingParams
from api.chat import replies as chat_replies
from api.chat.replies import ChatChunks, ReplyMeta, _chunk, chat_chunk_events
from api.chat.run import begin_chat
from api.generation.assembly import ReplyState
from api.registry import ModelRegistry
from api.schemas.chat import ChatCompletionRequest, ChoiceDelta
from api.services import Services
from api.settings import ModelKind, ServedModel, Settings

META = ReplyMeta(id="chatcmpl-1", created=1700000000, model="tiny-chat", system_fingerprint="fp")
MODEL = ServedModel(id="tiny-chat", kind=ModelKind.CHAT, triton_model="ensemble")


class SlowFirstToken:
    """A backend whose first response takes a turn of the event loop, as Triton's does."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        await asyncio.sleep(0)
        self.events.append("first token")
        yield GenerationChunk(prompt_tokens=3, text="Hi", completion_tokens=1)
        yield GenerationChunk(final=True)


def services_with(backend: SlowFirstToken) -> Services:
    # Only what begin_chat reads.
    settings = Settings()
    admission = Admission(settings.resilience, model_capacities(settings))
    fields: dict[str, Any] = {
        "settings": settings,
        "registry": ModelRegistry([MODEL]),
        "backend": backend,
        "content_filter": None,
        "resilience": SimpleNamespace(admission=admission),
    }
    return cast(Services, SimpleNamespace(**fields))


def recording_render(events: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    render = ChatChunks.render

    def recorded(self: ChatChunks) -> None:
        events.append("render")
        render(self)

    monkeypatch.setattr(chat_replies.ChatChunks, "render", recorded)


async def test_a_stream_renders_its_chunks_while_the_first_token_is_computed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    recording_render(events, monkeypatch)
    body = ChatCompletionRequest.model_validate(
        {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    )
    run = await begin_chat(services_with(SlowFirstToken(events)), body, "r1")
    assert events == ["render", "first token"]
    assert run.chunks is not None
    payloads = [
        p
        async for p in chat_chunk_events(
            run.streams, run.generations, run.meta, False, run.states, run.chunks
        )
    ]
    assert payloads[0] == _chunk(run.meta, 0, ChoiceDelta(role="assistant", content=""))
    assert payloads[1] == _chunk(run.meta, 0, ChoiceDelta(content="Hi"))


async def test_a_json_reply_renders_no_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    recording_render(events, monkeypatch)
    body = ChatCompletionRequest.model_validate(
        {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
    )
    run = await begin_chat(services_with(SlowFirstToken(events)), body, "r1")
    assert (events, run.chunks) == (["first token"], None)


def test_chunks_render_once_and_match_pydantic() -> None:
    chunks = ChatChunks(META, choices=2)
    chunks.render()
    roles = chunks.roles()
    chunks.render()
    assert chunks.roles() is roles
    assert roles == [_chunk(META, i, ChoiceDelta(role="assistant", content="")) for i in (0, 1)]
    assert chunks.contents.encode(1, " Paris") == _chunk(META, 1, ChoiceDelta(content=" Paris"))


async def test_events_without_prepared_chunks_are_the_same() -> None:
    async def stream() -> AsyncGenerator[GenerationChunk, None]:
        yield GenerationChunk(prompt_tokens=2, text="Yes", completion_tokens=1)
        yield GenerationChunk(final=True)

    request = GenerationRequest(
        request_id="r",
        triton_model="ensemble",
        params=SamplingParams(max_tokens=4),
        messages_json="[]",
    )

    async def collect(chunks: ChatChunks | None) -> list[bytes]:
        events = chat_chunk_events([stream()], [request], META, True, [ReplyState()], chunks)
        return [payload async for payload in events]

    assert await collect(None) == await collect(ChatChunks(META, 1))
