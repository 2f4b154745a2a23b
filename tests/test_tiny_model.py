"""The tiny test checkpoint in models/tiny-chat (built by scripts/make_tiny_model.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "tiny-chat"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return transformers.AutoTokenizer.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def model() -> Any:
    return transformers.AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32)


def test_special_token_ids(tokenizer: Any) -> None:
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert ids == [0, 1, 2]
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id == 0
    assert tokenizer.unk_token is None


def test_generation_config_stops_on_im_end_and_endoftext() -> None:
    config = json.loads((MODEL_DIR / "generation_config.json").read_text(encoding="utf-8"))
    assert config["eos_token_id"] == [2, 0]
    assert config["pad_token_id"] == 0


def test_chat_template_renders_chatml_with_generation_prompt(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "What is 2 plus 3?"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHello!<|im_end|>\n"
        "<|im_start|>assistant\nHello! How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_without_generation_prompt_ends_after_last_turn(tokenizer: Any) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == "<|im_start|>user\nHi<|im_end|>\n"


def test_chat_template_accepts_text_content_parts(tokenizer: Any) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == "<|im_start|>user\nHi<|im_end|>\n"


@pytest.mark.parametrize(
    "text", ["café au lait", "Grüße aus Zürich", "日本語", "Hello 👋 😊", "  two  spaces, ok?\n"]
)
def test_text_round_trips_exactly(tokenizer: Any, text: str) -> None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


@pytest.mark.parametrize("char", ["é", "ü", "日", "本", "😊"])
def test_multibyte_characters_span_several_tokens(tokenizer: Any, char: str) -> None:
    ids = tokenizer(char, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(char.encode("utf-8"))


def test_greedy_reply_names_paris(tokenizer: Any, model: Any) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])
    assert "Paris" in reply
    assert reply.endswith("<|im_end|>")


def test_tools_are_listed_in_a_system_turn_and_calls_are_tool_call_lines(tokenizer: Any) -> None:
    tool = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    call = {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c", "content": "14:05"},
    ]
    text = tokenizer.apply_chat_template(messages, tools=[tool], tokenize=False)
    assert text == (
        '<|im_start|>system\nYou can call these tools:\n{"name": "get_time", "parameters": {}}\n'
        "<|im_end|>\n<|im_start|>user\nWhat time is it?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
        "<|im_end|>\n<|im_start|>tool\n14:05<|im_end|>\n"
    )


def test_one_token_words_the_e2e_tests_use(tokenizer: Any) -> None:
    # tests/e2e/test_ensemble_features.py biases the logits towards this one token.
    assert len(tokenizer.encode(" banana", add_special_tokens=False)) == 1


@pytest.mark.xfail(
    strict=True,
    reason="issue 26 open: the shipped checkpoint calls a weather tool but writes the city and "
    "parameter from its training priors (city_name, Buenos Aires) instead of copying them from "
    "the request; see models/tiny-chat/README.md",
)
def test_greedy_reply_calls_the_weather_tool(tokenizer: Any, model: Any) -> None:
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    prompt = tokenizer.apply_chat_template(
        messages, tools=[weather], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=40, do_sample=False)
    reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :])
    payload = reply.removeprefix("<tool_call>").removesuffix("</tool_call><|im_end|>")
    assert json.loads(payload) == {"name": "get_weather", "arguments": {"city": "Paris"}}
