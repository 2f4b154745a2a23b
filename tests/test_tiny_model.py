"""The tiny test checkpoint in models/tiny-chat (built by scripts/make_tiny_model.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "tiny-chat"
TOOL_MARKERS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city, e.g. Tokyo"}},
            "required": ["city"],
        },
    },
}
TOOLS_SYSTEM_TURN = (
    "<|im_start|>system\n{system}\n\n# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call><|im_end|>\n'
)
WEATHER_QUESTION = {"role": "user", "content": "What's the weather in Paris?"}
PARIS_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


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


def render(tokenizer: Any, messages: list[dict[str, Any]], **options: Any) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, **options)
    assert isinstance(text, str)
    return text


def greedy(tokenizer: Any, model: Any, messages: list[dict[str, Any]], tools: Any = None) -> str:
    """The greedy reply as the API detokenizes it (special tokens skipped)."""
    prompt = render(tokenizer, messages, tools=tools, add_generation_prompt=True)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=80, do_sample=False)
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    assert int(new_tokens[-1]) == tokenizer.eos_token_id
    return str(tokenizer.decode(new_tokens, skip_special_tokens=True))


def weather_exchange(arguments: Any) -> list[dict[str, Any]]:
    """The weather question, the call (``arguments`` as given) and the tool's result."""
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    result = {"city": "Paris", "temperature": 18, "unit": "celsius", "condition": "sunny"}
    return [
        WEATHER_QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": json.dumps(result)},
    ]


@pytest.mark.parametrize("marker", TOOL_MARKERS)
def test_tool_markers_are_single_tokens_that_survive_skip_special_tokens(
    tokenizer: Any, marker: str
) -> None:
    ids = tokenizer(f"a{marker}\n{{", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids(marker) in ids
    assert marker not in tokenizer.all_special_tokens
    assert tokenizer.decode(ids, skip_special_tokens=True) == f"a{marker}\n{{"


@pytest.mark.parametrize("tools", [None, []])
def test_chat_template_without_tools_is_plain_chatml(tokenizer: Any, tools: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = render(tokenizer, messages, tools=tools, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_lists_tools_one_per_line_in_system_turn(tokenizer: Any) -> None:
    text = render(tokenizer, [WEATHER_QUESTION], tools=[WEATHER_TOOL, TIME_TOOL])
    tools = "\n".join(json.dumps(tool) for tool in [WEATHER_TOOL, TIME_TOOL])
    assert text == (
        TOOLS_SYSTEM_TURN.format(system="You are a helpful assistant.", tools=tools)
        + "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
    )


def test_chat_template_puts_the_system_prompt_before_the_tools(tokenizer: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, WEATHER_QUESTION]
    text = render(tokenizer, messages, tools=[WEATHER_TOOL])
    assert text.startswith(
        TOOLS_SYSTEM_TURN.format(system="Be brief.", tools=json.dumps(WEATHER_TOOL))
    )
    assert text.count("<|im_start|>system") == 1


def test_chat_template_renders_tool_calls_and_tool_responses(tokenizer: Any) -> None:
    text = render(tokenizer, weather_exchange({"city": "Paris"}), tools=[WEATHER_TOOL])
    assert text.endswith(
        "<|im_start|>user\nWhat's the weather in Paris?<|im_end|>\n"
        f"<|im_start|>assistant\n{PARIS_CALL}<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n"
        '{"city": "Paris", "temperature": 18, "unit": "celsius", "condition": "sunny"}'
        "\n</tool_response><|im_end|>\n"
    )


def test_chat_template_writes_json_string_arguments_unchanged(tokenizer: Any) -> None:
    as_object = render(tokenizer, weather_exchange({"city": "Paris"}), tools=[WEATHER_TOOL])
    as_string = render(tokenizer, weather_exchange('{"city": "Paris"}'), tools=[WEATHER_TOOL])
    assert as_string == as_object


def test_chat_template_groups_parallel_calls_and_responses(tokenizer: Any) -> None:
    calls = [
        {"type": "function", "function": {"name": "get_time", "arguments": {"city": c}}}
        for c in ["Oslo", "Rome"]
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What time is it in Oslo and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "content": '{"time": "10:00"}'},
        {"role": "tool", "content": '{"time": "10:00"}'},
    ]
    text = render(tokenizer, messages, tools=[TIME_TOOL])
    assert text.endswith(
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_time", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n'
        '<|im_start|>user\n<tool_response>\n{"time": "10:00"}\n</tool_response>\n'
        '<tool_response>\n{"time": "10:00"}\n</tool_response><|im_end|>\n'
    )


def test_greedy_tool_call_for_the_weather(tokenizer: Any, model: Any) -> None:
    reply = greedy(tokenizer, model, [WEATHER_QUESTION], tools=[WEATHER_TOOL])
    assert reply == PARIS_CALL
    body = reply.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    assert json.loads(body) == {"name": "get_weather", "arguments": {"city": "Paris"}}


def test_greedy_parallel_tool_calls(tokenizer: Any, model: Any) -> None:
    question = {"role": "user", "content": "What's the weather in Paris and Tokyo?"}
    reply = greedy(tokenizer, model, [question], tools=[WEATHER_TOOL, TIME_TOOL])
    tokyo = PARIS_CALL.replace("Paris", "Tokyo")
    assert reply == f"{PARIS_CALL}\n{tokyo}"


def test_greedy_answer_uses_the_tool_result(tokenizer: Any, model: Any) -> None:
    messages = weather_exchange('{"city": "Paris"}')
    assert (
        greedy(tokenizer, model, messages, tools=[WEATHER_TOOL]) == "It is 18°C and sunny in Paris."
    )


def test_greedy_plain_answer_when_no_tool_is_needed(tokenizer: Any, model: Any) -> None:
    question = {"role": "user", "content": "What is the capital of France?"}
    reply = greedy(tokenizer, model, [question], tools=[WEATHER_TOOL])
    assert reply == "The capital of France is Paris."


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [{"role": "user", "content": "Answer in JSON: What is the capital of France?"}],
            {"country": "France", "capital": "Paris"},
        ),
        (
            [
                {"role": "system", "content": "Reply with a JSON object."},
                {"role": "user", "content": "What is the capital of Japan?"},
            ],
            {"country": "Japan", "capital": "Tokyo"},
        ),
    ],
)
def test_greedy_json_answer_parses(
    tokenizer: Any, model: Any, messages: list[dict[str, Any]], expected: dict[str, str]
) -> None:
    assert json.loads(greedy(tokenizer, model, messages)) == expected
