"""Spliced per-token chunks are the chunks pydantic renders (``api/generation/chunk_templates``)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.chat.replies import ReplyMeta, _chunk
from api.generation.chunk_templates import MARK, SplicedChunks, split_at_mark
from api.schemas.chat import ChoiceDelta

META = ReplyMeta(id="chatcmpl-1", created=1700000000, model="tiny-chat", system_fingerprint="fp")


def render(index: int, text: str) -> bytes:
    return _chunk(META, index, ChoiceDelta(content=text))


@given(text=st.text(), index=st.integers(min_value=0, max_value=3))
def test_spliced_chunks_parse_to_the_rendered_ones(text: str, index: int) -> None:
    spliced = SplicedChunks(render).encode(index, text)
    assert orjson.loads(spliced) == orjson.loads(render(index, text))


def test_plain_text_is_byte_identical() -> None:
    chunks = SplicedChunks(render)
    for text in (" Paris", "", 'quote " and \\ and \n', "héllo ✓ 🚀"):
        assert chunks.encode(0, text) == render(0, text)


def test_lone_surrogates_fall_back_to_pydantic() -> None:
    calls: list[str] = []

    def counting(index: int, text: str) -> bytes:
        calls.append(text)
        return b'{"text":"?"}' if text != MARK else orjson.dumps({"text": MARK})

    assert SplicedChunks(counting).encode(0, "\ud800") == b'{"text":"?"}'
    assert calls == [MARK, "\ud800"]


def test_the_mark_must_appear_exactly_once() -> None:
    encoded = orjson.dumps(MARK)
    assert split_at_mark(b"{" + encoded + b"}") == (b"{", b"}")
    with pytest.raises(ValueError):
        split_at_mark(b"{}")
    with pytest.raises(ValueError):
        split_at_mark(encoded + encoded)
