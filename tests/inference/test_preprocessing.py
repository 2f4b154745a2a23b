"""The preprocessing step on numpy arrays, shaped as Triton hands them over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from transformers import PreTrainedTokenizerBase

from inference.preprocessing import Preprocessor, PreprocessRequest
from inference.token_bytes import token_bytes_table
from inference.tokenization import (
    ContextLengthExceededError,
    PromptTooLongError,
    load_tokenizer,
    prompt_byte_limit,
)
from tests.inference.conftest import CHATML_TEMPLATE


def _bytes(*rows: list[str]) -> npt.NDArray[np.object_]:
    return np.array([[s.encode() for s in row] for row in rows], dtype=np.object_)


def _lens(*values: int) -> npt.NDArray[np.int32]:
    return np.array([[v] for v in values], dtype=np.int32)


@pytest.fixture(scope="module")
def preprocessor(tokenizer: PreTrainedTokenizerBase) -> Preprocessor:
    return Preprocessor(tokenizer, max_context=64)


def test_messages(preprocessor: Preprocessor, tokenizer: PreTrainedTokenizerBase) -> None:
    messages = [{"role": "user", "content": "Hello!"}]
    result = preprocessor(
        PreprocessRequest(output_lengths=_lens(8), messages=_bytes([json.dumps(messages)]))
    )
    expected = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=False, add_generation_prompt=True
    )
    assert result.input_id.tolist() == [expected]
    assert result.request_input_len.tolist() == [[len(expected)]]
    assert result.request_output_len.tolist() == [[8]]
    assert result.out_end_id.tolist() == [[tokenizer.eos_token_id]]
    assert result.out_pad_id.tolist() == [[tokenizer.pad_token_id]]
    assert result.stop_words_ids.shape == (1, 2, 0)
    assert result.bad_words_ids.shape == (1, 2, 0)


def test_batch_of_queries_is_right_padded(preprocessor: Preprocessor) -> None:
    result = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4, 4),
            queries=_bytes(["Hello!"], ["one two three four five"]),
            pad_ids=_lens(-7, -9),
        )
    )
    short, long = result.request_input_len[:, 0].tolist()
    assert result.input_id.shape == (2, long)
    assert result.input_id[0, short:].tolist() == [-7] * (long - short)
    assert result.out_pad_id.tolist() == [[-7], [-9]]


def test_stop_and_bad_words(preprocessor: Preprocessor, tokenizer: PreTrainedTokenizerBase) -> None:
    result = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4),
            queries=_bytes(["Hi"]),
            stop_words=_bytes(["Hello", ""]),
            bad_words=_bytes([" two"]),
            end_ids=_lens(3),
        )
    )
    hello = tokenizer.encode("Hello", add_special_tokens=False)
    spaced = tokenizer.encode(" Hello", add_special_tokens=False)
    width = len(hello) + len(spaced)
    assert result.stop_words_ids[0, 0].tolist() == hello + spaced
    assert result.stop_words_ids[0, 1].tolist()[:2] == [len(hello), width]
    assert result.bad_words_ids[0, 0].tolist() == tokenizer.encode(" two", add_special_tokens=False)
    assert result.out_end_id.tolist() == [[3]]


def test_context_length_exceeded(preprocessor: Preprocessor) -> None:
    with pytest.raises(ContextLengthExceededError, match=r"^context_length_exceeded: .* 64 tokens"):
        preprocessor(PreprocessRequest(output_lengths=_lens(63), queries=_bytes(["Hello! " * 5])))


@pytest.mark.parametrize(
    ("queries", "messages", "match"),
    [(None, None, "exactly one"), (["a"], ["[]"], "exactly one")],
)
def test_prompt_must_be_one_of_text_or_messages(
    preprocessor: Preprocessor, queries: list[str] | None, messages: list[str] | None, match: str
) -> None:
    request = PreprocessRequest(
        output_lengths=_lens(1),
        queries=None if queries is None else _bytes(queries),
        messages=None if messages is None else _bytes(messages),
    )
    with pytest.raises(ValueError, match=match):
        preprocessor(request)


def test_max_tokens_must_be_positive(preprocessor: Preprocessor) -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        preprocessor(PreprocessRequest(output_lengths=_lens(0), queries=_bytes(["Hi"])))


def test_from_dir_reads_the_context_window(tokenizer_dir: Path) -> None:
    assert Preprocessor.from_dir(tokenizer_dir, max_context_tokens=128).max_context == 128


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
# Renders tools, tool calls and tool results the way Hermes/Qwen-style templates do.
TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system{{ '\\n' }}{% for tool in tools %}"
    "{{ tool['function']['name'] }}: {{ tool['function']['description'] }}{{ '\\n' }}"
    "{% endfor %}<|im_end|>{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    "{% if message.get('tool_calls') %}{% for call in message['tool_calls'] %}"
    "<tool_call>{{ call['function']['name'] }} {{ call['function']['arguments'] }}</tool_call>"
    "{% endfor %}{% elif message['role'] == 'tool' %}"
    "[{{ message['tool_call_id'] }}] {{ message['content'] }}"
    "{% else %}{{ message['content'] }}{% endif %}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{{ '\\n' }}{% endif %}"
)
TOOL_CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def test_tools_and_tool_messages_reach_the_chat_template(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.chat_template = TOOLS_TEMPLATE
    preprocessor = Preprocessor(tokenizer, max_context=1024)
    result = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4),
            messages=_bytes([json.dumps(TOOL_CONVERSATION)]),
            tools=_bytes([json.dumps(TOOLS)]),
        )
    )
    length = int(result.request_input_len[0, 0])
    prompt = tokenizer.decode(result.input_id[0, :length].tolist(), skip_special_tokens=True)
    assert prompt == (
        "system\nget_weather: Weather for a city\n"
        "user\nWeather in Paris?"
        'assistant\n<tool_call>get_weather {"city": "Paris"}</tool_call>'
        "tool\n[call_1] sunny"
        "assistant\n"
    )
    without = preprocessor(
        PreprocessRequest(output_lengths=_lens(4), messages=_bytes([json.dumps(TOOL_CONVERSATION)]))
    )
    assert int(without.request_input_len[0, 0]) < length


@pytest.mark.parametrize(
    ("tools", "match"),
    [("{}", "list of objects"), ("[1]", "list of objects"), ("[", "not valid JSON")],
)
def test_malformed_tools_are_request_errors(
    preprocessor: Preprocessor, tools: str, match: str
) -> None:
    request = PreprocessRequest(
        output_lengths=_lens(1),
        messages=_bytes(['[{"role": "user", "content": "hi"}]']),
        tools=_bytes([tools]),
    )
    with pytest.raises(ValueError, match=f"^invalid_tools: .*{match}"):
        preprocessor(request)


def test_tools_need_messages(preprocessor: Preprocessor) -> None:
    request = PreprocessRequest(
        output_lengths=_lens(1), queries=_bytes(["hi"]), tools=_bytes([json.dumps(TOOLS)])
    )
    with pytest.raises(ValueError, match=r"^invalid_tools: tools need messages"):
        preprocessor(request)


def test_logit_bias_becomes_a_dense_embedding_bias(
    preprocessor: Preprocessor, tokenizer: PreTrainedTokenizerBase
) -> None:
    plain = preprocessor(PreprocessRequest(output_lengths=_lens(4), queries=_bytes(["Hi"])))
    assert plain.embedding_bias.shape == (1, 0)
    biased = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4),
            queries=_bytes(["Hi"]),
            logit_bias_ids=np.array([[7, 11]], dtype=np.int32),
            logit_bias_weights=np.array([[-100.0, 5.5]], dtype=np.float32),
        )
    )
    assert biased.embedding_bias.shape == (1, len(tokenizer))
    assert biased.embedding_bias.dtype == np.float32
    assert biased.embedding_bias[0, [7, 11]].tolist() == [-100.0, 5.5]
    assert np.count_nonzero(biased.embedding_bias) == 2


def test_embedding_bias_is_as_wide_as_the_engine_vocabulary(
    tokenizer: PreTrainedTokenizerBase, tokenizer_dir: Path
) -> None:
    padded = len(tokenizer) + 7
    preprocessor = Preprocessor.from_dir(tokenizer_dir, max_context_tokens=64, vocab_size=padded)
    biased = preprocessor(
        PreprocessRequest(
            output_lengths=_lens(4),
            queries=_bytes(["Hi"]),
            logit_bias_ids=np.array([[7]], dtype=np.int32),
            logit_bias_weights=np.array([[2.0]], dtype=np.float32),
        )
    )
    assert biased.embedding_bias.shape == (1, padded)
    assert biased.embedding_bias[0, 7] == 2.0
    with pytest.raises(ValueError, match="below the tokenizer"):
        Preprocessor(tokenizer, max_context=64, engine_vocab_size=len(tokenizer) - 1)


def test_token_ids_outside_the_vocabulary_are_refused(
    preprocessor: Preprocessor, tokenizer: PreTrainedTokenizerBase
) -> None:
    request = PreprocessRequest(
        output_lengths=_lens(4),
        queries=_bytes(["Hi"]),
        logit_bias_ids=np.array([[len(tokenizer)]], dtype=np.int32),
        logit_bias_weights=np.array([[1.0]], dtype=np.float32),
    )
    with pytest.raises(ValueError, match=r"^invalid_logit_bias: token id \d+ is not in"):
        preprocessor(request)


class _NoTokenizing:
    """Fails a test that reaches the tokenizer: over-long prompts must be refused before."""

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the tokenizer was called")


def _refusing_tokenizer(
    tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> PreTrainedTokenizerBase:
    tokenizer = load_tokenizer(tokenizer_dir)
    monkeypatch.setattr(tokenizer, "apply_chat_template", _NoTokenizing())
    monkeypatch.setattr(tokenizer, "encode", _NoTokenizing())
    return tokenizer


def test_the_byte_limit_is_the_context_times_the_longest_token(
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    longest = max(len(piece) for piece in token_bytes_table(tokenizer))
    longest = max([longest] + [len(token) for token in tokenizer.all_special_tokens])
    normalized = tokenizer.backend_tokenizer.normalizer is not None
    expected = 64 * longest * (4 if normalized else 1)
    assert Preprocessor(tokenizer, max_context=64).max_prompt_bytes == expected
    assert prompt_byte_limit(tokenizer, 64) == expected


@pytest.mark.parametrize(("field", "source"), [("queries", "prompt"), ("messages", "messages")])
def test_a_prompt_past_the_byte_limit_is_refused_untokenized(
    tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch, field: str, source: str
) -> None:
    preprocessor = Preprocessor(_refusing_tokenizer(tokenizer_dir, monkeypatch), max_context=64)
    text = "é" * (preprocessor.max_prompt_bytes // 2 + 1)  # 2 bytes each: one byte too many
    if field == "queries":
        request = PreprocessRequest(output_lengths=_lens(1), queries=_bytes([text]))
    else:
        messages = json.dumps([{"role": "user", "content": text}])
        request = PreprocessRequest(output_lengths=_lens(1), messages=_bytes([messages]))
    with pytest.raises(PromptTooLongError) as refused:
        preprocessor(request)
    message = str(refused.value)
    assert message.startswith("context_length_exceeded: ")
    assert f"no prompt of more than {preprocessor.max_prompt_bytes} bytes fits" in message
    sent = len(text.encode()) + (len("user") if field == "messages" else 0)  # the role counts
    assert f"you sent {sent} bytes in the {source}" in message


def test_prompts_within_the_byte_limit_are_tokenized(preprocessor: Preprocessor) -> None:
    # At the byte limit the token count decides: here the prompt does not fit either.
    text = "a" * preprocessor.max_prompt_bytes
    request = PreprocessRequest(output_lengths=_lens(1), queries=_bytes([text]))
    with pytest.raises(ContextLengthExceededError, match=r"tokens\. However, you requested"):
        preprocessor(request)
    fits = PreprocessRequest(output_lengths=_lens(1), queries=_bytes(["a b c"]))
    assert int(preprocessor(fits).request_input_len[0, 0]) > 0


def test_every_string_of_the_messages_counts(
    tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preprocessor = Preprocessor(_refusing_tokenizer(tokenizer_dir, monkeypatch), max_context=64)
    arguments = "x" * preprocessor.max_prompt_bytes
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]},
    ]
    request = PreprocessRequest(output_lengths=_lens(1), messages=_bytes([json.dumps(messages)]))
    with pytest.raises(PromptTooLongError, match="bytes in the messages"):
        preprocessor(request)


def test_tools_count_only_when_the_template_renders_them(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    big = [{"type": "function", "function": {"name": "f", "description": "d" * 5000}}]
    request = PreprocessRequest(
        output_lengths=_lens(1),
        messages=_bytes(['[{"role": "user", "content": "hi"}]']),
        tools=_bytes([json.dumps(big)]),
    )
    tokenizer.chat_template = CHATML_TEMPLATE  # reads no tools (tiny-chat's own template does)
    assert int(Preprocessor(tokenizer, max_context=64)(request).request_input_len[0, 0]) > 0
    tokenizer.chat_template = TOOLS_TEMPLATE
    with pytest.raises(PromptTooLongError, match="bytes in the messages"):
        Preprocessor(tokenizer, max_context=64)(request)


def test_an_operator_may_set_the_byte_limit(tokenizer: PreTrainedTokenizerBase) -> None:
    tight = Preprocessor(tokenizer, max_context=64, max_prompt_bytes=10)
    request = PreprocessRequest(output_lengths=_lens(1), queries=_bytes(["eleven byte"]))
    with pytest.raises(PromptTooLongError, match="more than 10 bytes"):
        tight(request)
