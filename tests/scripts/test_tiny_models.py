"""scripts/tiny_models: the tokenizer, training sequences and loop both tiny models share."""

from __future__ import annotations

import json
import random
from pathlib import Path

import make_tiny_model
import pytest
import torch
from tiny_models import chat_everyday as everyday
from tiny_models import chat_tools
from tiny_models.tokenizer import IM_END, TOOLS_CHAT_TEMPLATE, render_chat, train_tokenizer
from tiny_models.training import (
    IGNORE_INDEX,
    Example,
    ModelSize,
    build_model,
    collate,
    encode_dialogue,
    learning_rate,
    train,
)
from transformers import PreTrainedTokenizerFast

TEXTS = ["user\nWhat is 2 plus 3?", "assistant\n2 plus 3 is 5.", "café 日本 😊"] * 20


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    made: PreTrainedTokenizerFast = train_tokenizer(TEXTS, 400)
    return made


def test_special_tokens_and_chat_template(tokenizer: PreTrainedTokenizerFast) -> None:
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", IM_END]) == [0, 1, 2]
    text = render_chat(tokenizer, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_the_loss_covers_assistant_replies_only(tokenizer: PreTrainedTokenizerFast) -> None:
    messages = [
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "2 plus 3 is 5."},
    ]
    example = encode_dialogue(tokenizer, messages)
    taught = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label >= 0]
    assert tokenizer.decode(taught) == "2 plus 3 is 5." + IM_END
    assert len(encode_dialogue(tokenizer, messages * 40, max_len=50).input_ids) == 50


def test_collate_pads_right_with_ignored_labels() -> None:
    ids, mask, labels = collate([Example([5, 6, 7], [5, 6, 7]), Example([8], [IGNORE_INDEX])])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert labels.tolist() == [[5, 6, 7], [IGNORE_INDEX] * 3]


def test_learning_rate_warms_up_then_decays_to_a_tenth() -> None:
    rates = [learning_rate(step, 100, peak=1.0, warmup=10) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert rates[10] > rates[50] > rates[99] >= 0.1


def test_a_few_steps_lower_the_loss(tokenizer: PreTrainedTokenizerFast) -> None:
    torch.manual_seed(0)
    model = build_model(len(tokenizer), ModelSize(hidden=64, intermediate=128, layers=1, heads=2))
    messages = [
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "2 plus 3 is 5."},
    ]
    example = encode_dialogue(tokenizer, messages)
    ids, mask, labels = collate([example])

    def loss() -> float:
        with torch.no_grad():
            return float(model(input_ids=ids, attention_mask=mask, labels=labels).loss)

    before = loss()
    result = train(model, [example] * 8, steps=40, seed=0, batch_size=4)
    assert (result.steps, result.batch_size) == (40, 4)
    assert loss() < 0.6 * before
    assert not model.training


def test_tiny_chat_keeps_an_existing_checkpoint_without_force(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert make_tiny_model.main(["--output", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_tiny_chat_corpus_is_deterministic() -> None:
    first = make_tiny_model.generate_corpus(3, n_dialogues=50, n_documents=5)
    assert first == make_tiny_model.generate_corpus(3, n_dialogues=50, n_documents=5)
    assert first != make_tiny_model.generate_corpus(4, n_dialogues=50, n_documents=5)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def tool_tokenizer() -> PreTrainedTokenizerFast:
    made: PreTrainedTokenizerFast = train_tokenizer(TEXTS, 400, TOOLS_CHAT_TEMPLATE)
    return made


def test_the_tools_template_renders_plain_chats_as_chatml(
    tokenizer: PreTrainedTokenizerFast, tool_tokenizer: PreTrainedTokenizerFast
) -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!"},
    ]
    for prompt in (True, False):
        assert render_chat(tool_tokenizer, chat, prompt) == render_chat(tokenizer, chat, prompt)


def test_the_tools_template_lists_tools_and_writes_calls_as_the_guide_does(
    tool_tokenizer: PreTrainedTokenizerFast,
) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "get_weather"}}
    chat = [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {**call, "function": {**call["function"], "arguments": {"city": "Paris"}}},
                {**call, "function": {**call["function"], "arguments": '{"city":"Oslo"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c", "content": "18C, sunny"},
    ]
    text = render_chat(tool_tokenizer, chat, add_generation_prompt=True, tools=[WEATHER_TOOL])
    listed = json.dumps(WEATHER_TOOL["function"])
    assert text == (
        f"<|im_start|>system\nYou can call these tools:\n{listed}\n<|im_end|>\n"
        "<|im_start|>user\nWeather in Paris and Oslo?<|im_end|>\n"
        # A dict is written with the separators the forced-call guide uses (", " and ": ");
        # a client's arguments string is written as sent.
        '<|im_start|>assistant\n<tool_call>{"name": "get_weather", "arguments": '
        '{"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "get_weather", "arguments": {"city":"Oslo"}}</tool_call><|im_end|>\n'
        "<|im_start|>tool\n18C, sunny<|im_end|>\n<|im_start|>assistant\n"
    )


def test_last_reply_only_keeps_earlier_replies_as_context(
    tool_tokenizer: PreTrainedTokenizerFast,
) -> None:
    messages = [
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "2 plus 3 is 5."},
        {"role": "user", "content": "Again"},
        {"role": "assistant", "content": "5."},
    ]
    example = encode_dialogue(tool_tokenizer, messages, last_reply_only=True)
    taught = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label >= 0]
    assert tool_tokenizer.decode(taught) == "5." + IM_END


def test_tool_dialogues_copy_names_and_parameters_from_their_tools() -> None:
    rng = random.Random(5)
    called = set()
    for _ in range(300):
        dialogue = chat_tools.tool_dialogue(rng, None)
        functions = {t["function"]["name"]: t["function"] for t in dialogue.tools or []}
        calls = [c for m in dialogue.messages for c in m.get("tool_calls") or []]
        assert calls
        for call in calls:
            function = functions[call["function"]["name"]]
            arguments = call["function"]["arguments"]
            if isinstance(arguments, str):  # echoed as a client sends it back: compact JSON
                assert dialogue.last_reply_only and ": " not in arguments
                arguments = json.loads(arguments)
            properties = function["parameters"]["properties"]
            assert list(arguments) == [p for p in properties if p != "unit"]
            for name, value in arguments.items():
                kind = {"string": str, "integer": int}[properties[name]["type"]]
                assert isinstance(value, kind) and value != ""
            called.add(call["function"]["name"])
        if dialogue.last_reply_only:
            assert dialogue.messages[-2]["role"] == "tool"
            assert dialogue.messages[-1]["content"].endswith(".")
    assert len(called) > 20  # many spellings, not one per family


def test_without_a_fitting_tool_the_answer_is_plain() -> None:
    rng = random.Random(6)
    for _ in range(100):
        dialogue = chat_tools.no_fit_dialogue(rng, None, lambda _: ("Hi", "Hello!"))
        assert all("tool_calls" not in m for m in dialogue.messages)
        assert dialogue.messages[-1]["content"]


def test_the_corpus_covers_every_readme_example_prompt() -> None:
    corpus = make_tiny_model.generate_corpus(0, n_dialogues=400, n_documents=5)
    questions = {m["content"] for d in corpus.dialogues for m in d.messages if m["role"] == "user"}
    for prompt in (
        "Hello!", "Hi", "Explain quantum computing in simple terms", "Write a haiku about AI.",
        "Say hello in one short sentence.", "Send me a smiley.", "Tell me a story about a cat.",
    ):  # fmt: skip
        assert prompt in questions
    assert any(d.tools and "tool_calls" in d.messages[-1] for d in corpus.dialogues)
    assert any(d.tools and "tool_calls" not in d.messages[-1] for d in corpus.dialogues)


def test_symbol_arithmetic_and_json_answers_are_right() -> None:
    rng = random.Random(7)
    for _ in range(50):
        question, answer = everyday.symbol_sum_turn(rng)
        a, op, b, _, value = answer.rstrip(".").split(" ")
        assert int(value) == {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}[op](
            int(a), int(b)
        )
        assert question.startswith("What is ")
        _, reply = everyday.json_turn(rng, {"France": "Paris"})
        assert isinstance(json.loads(reply), dict)
