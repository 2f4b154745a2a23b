"""The tool-call splitter: text passes as it comes, calls once closed, the same in any chunking."""

from __future__ import annotations

import itertools
import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.generation.tool_calls import decode_call, forced_call
from api.generation.tool_stream import ParsedReply, Part, ToolCallSplitter, joined, parse_reply

GOOD = '{"name": "f", "arguments": {"x": 1}}'
CALL = f"<tool_call>{GOOD}</tool_call>"
PIECES = [
    "<tool_call>",
    "</tool_call>",
    "<tool",
    "_call>",
    "</tool",
    "<",
    GOOD,
    CALL,
    "<tool_call>not json</tool_call>",
    "not json",
    '{"name": 1}',
    " ",
    "\n",
    "Hi",
    "x",
]


def without_ids(parsed: ParsedReply) -> tuple[str | None, list[Any]]:
    return parsed.content, [call["function"] for call in parsed.tool_calls]


def reference(text: str) -> ParsedReply:
    """The rules of tool_stream.py's docstring, applied to a whole text with a regex."""
    pieces: list[Part] = []
    position = 0
    for match in re.finditer(r"<tool_call>(.*?)</tool_call>", text, re.DOTALL):
        call = decode_call(match.group(1).strip())
        pieces += [text[position : match.start()], call or match.group(0)]
        position = match.end()
    pieces.append(text[position:])
    merged: list[Part] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    content, calls = "", []
    for index, piece in enumerate(merged):
        if not isinstance(piece, str):
            calls.append(piece)
            continue
        before_call = index + 1 < len(merged)  # a text piece is followed only by a call
        after_call = index > 0
        if before_call:
            piece = piece.rstrip()
        elif after_call and piece.isspace():
            piece = ""
        content += piece
    return ParsedReply(content or (None if calls else content), calls)


def split_feed(text: str, cuts: list[int]) -> tuple[list[list[Part]], list[Part]]:
    """The parts each delta gave (text cut at ``cuts``) and what finishing gave."""
    splitter = ToolCallSplitter()
    bounds = [0, *sorted(set(cuts)), len(text)]
    fed = [splitter.feed(text[a:b]) for a, b in itertools.pairwise(bounds)]
    return fed, splitter.finish()


@settings(max_examples=500)
@given(
    st.lists(st.sampled_from(PIECES), max_size=14),
    st.lists(st.integers(min_value=0, max_value=200), max_size=12),
)
@example([CALL, " "], [12])
@example(["Hi", " ", CALL, "\n", "x", " "], [3, 4])
@example(["<tool_call>not json</tool_call>", " ", CALL, " ", "x"], [])
def test_any_chunking_gives_the_reference_split(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    fed, rest = split_feed(text, [cut for cut in cuts if cut <= len(text)])
    streamed = joined([part for parts in fed for part in parts] + rest)
    assert without_ids(streamed) == without_ids(reference(text))
    assert without_ids(parse_reply(text)) == without_ids(streamed)
    if not streamed.tool_calls:
        assert streamed.content == text  # a reply without calls is its text, exactly


def test_text_passes_at_once_but_what_may_open_a_call() -> None:
    splitter = ToolCallSplitter()
    assert splitter.feed("Let me") == ["Let me"]
    assert splitter.feed(" check. <to") == [" check."]
    assert splitter.feed("ol_call> {") == []
    (call,) = splitter.feed('"name": "f", "arguments": {}} </tool_call>')
    assert not isinstance(call, str) and call["id"].startswith("call_")
    assert (call["type"], call["function"]) == ("function", {"name": "f", "arguments": "{}"})
    assert splitter.feed("\n") == []
    assert splitter.feed("Done") == ["\nDone"]
    assert splitter.finish() == []


def test_a_false_start_is_text() -> None:
    splitter = ToolCallSplitter()
    assert splitter.feed("1 <tool") == ["1"]
    assert splitter.feed("s> 2 ") == [" <tools> 2"]
    assert splitter.finish() == [" "]


def test_calls_and_whitespace() -> None:
    call = CALL
    assert without_ids(parse_reply(f"Sure.\n{call}\n{call}\n")) == (
        "Sure.",
        [{"name": "f", "arguments": '{"x":1}'}] * 2,
    )
    assert parse_reply(f" {call} ").content is None
    assert parse_reply("").content == ""
    assert parse_reply(" \n").content == " \n"


def test_forced_calls_cut_anywhere() -> None:
    names = ["get_weather", "get_time"]
    complete = forced_call('{"name": "get_time", "arguments": {"tz": "UTC"}}', names)
    assert complete["function"] == {"name": "get_time", "arguments": '{"tz":"UTC"}'}
    cut = forced_call('{"name": "get_weather", "arguments": {"city": "Par', names)
    assert cut["function"] == {"name": "get_weather", "arguments": '{"city": "Par'}
    assert forced_call('{"name": "get_w', names)["function"] == {
        "name": "get_weather",
        "arguments": "",
    }
    assert forced_call('{"name": "get_', names)["function"]["name"] == "get_"
    assert forced_call('{"na', ["only"])["function"] == {"name": "only", "arguments": ""}
    assert forced_call('{"name": "a\\"b", "argu', [])["function"]["name"] == 'a"b'
    assert forced_call('{"name": "a\\u00', [])["function"]["name"] == "a"
    splitter = ToolCallSplitter(forced=True, names=names)
    assert splitter.feed('{"name": "get_time", ') == []
    (call,) = splitter.finish()
    assert not isinstance(call, str) and call["function"]["name"] == "get_time"
