"""Generate text, train a tiny Llama-style chat model on it and save a Hugging Face checkpoint.

The checkpoint exists for tests and demos of the gateway: it answers a fixed set of templated
questions (greetings, capitals, arithmetic, counting, "repeat after me") in ChatML, stops on
``<|im_end|>`` and has a byte-level tokenizer, so that UTF-8 handling can be tested with
characters that span several tokens. Given OpenAI-style ``tools`` (Qwen2.5/Hermes template) it
answers weather, time, currency and documentation questions with ``<tool_call>`` JSON and then
phrases the tool's result; asked for JSON, it answers with a JSON object. Everything (text,
tokenizer, weights) is produced here from a seed; nothing is downloaded.

Usage::

    python scripts/make_tiny_model.py --output models/tiny-chat [--steps N] [--seed S] [--force]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    GenerationMixin,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

logger = logging.getLogger(__name__)

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]  # ids 0, 1, 2 (the trainer keeps this order)
VOCAB_SIZE = 2048
MAX_SEQ_LEN = 640  # a system turn listing all four tools plus a tool exchange fits
IGNORE_INDEX = -100

TOOL_CALL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# Qwen2.5 / Hermes wording, so that clients written for those models prompt this one alike.
TOOLS_PREAMBLE = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_POSTAMBLE = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def jinja_literal(text: str) -> str:
    """``text`` as a single-quoted Jinja string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


# ChatML. Content may be a string or a list of OpenAI-style parts (only "text" parts render).
# Without `tools` and tool messages this renders exactly the plain ChatML the model was first
# trained on. With `tools`, the system turn lists them (one JSON signature per line) the way
# Qwen2.5 does; assistant `tool_calls` render as <tool_call> blocks (OpenAI sends `arguments`
# as a JSON string, which is written unchanged) and `tool` messages as <tool_response> blocks
# inside one user turn.
CHAT_TEMPLATE = (
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- elif content is iterable -%}"
    "{%- for part in content if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{%- endmacro -%}"
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{{- render_content(messages[0]['content']) -}}"
    f"{{%- else -%}}{{{{- {jinja_literal(DEFAULT_SYSTEM_PROMPT)} -}}}}{{%- endif -%}}"
    f"{{{{- {jinja_literal(TOOLS_PREAMBLE)} -}}}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    f"{{{{- {jinja_literal(TOOLS_POSTAMBLE)} + '<|im_end|>\\n' -}}}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if tools and loop.first and message['role'] == 'system' -%}"
    "{%- elif message['role'] == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}"
    "{{- '<|im_start|>user' -}}"
    "{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + render_content(message['content']) + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- elif message['role'] == 'assistant' and message['tool_calls'] -%}"
    "{{- '<|im_start|>assistant' -}}"
    "{%- if message['content'] -%}{{- '\\n' + render_content(message['content']) -}}{%- endif -%}"
    "{%- for tool_call in message['tool_calls'] -%}"
    "{%- set call = tool_call['function'] if tool_call['function'] is defined else tool_call -%}"
    "{%- set arguments = call['arguments'] if call['arguments'] is defined else {} -%}"
    "{{- '\\n<tool_call>\\n{\"name\": ' + (call['name'] | tojson) + ', \"arguments\": ' -}}"
    "{%- if arguments is string -%}{{- arguments -}}"
    "{%- else -%}{{- arguments | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + render_content(message['content']) -}}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

Message = dict[str, Any]
Tool = dict[str, Any]
Turn = tuple[str, str]

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "Japan": "Tokyo", "China": "Beijing", "India": "New Delhi",
    "Brazil": "Brasília", "Argentina": "Buenos Aires", "Canada": "Ottawa",
    "Mexico": "Mexico City", "Australia": "Canberra", "Egypt": "Cairo", "Kenya": "Nairobi",
    "Nigeria": "Abuja", "Russia": "Moscow", "Poland": "Warsaw", "Sweden": "Stockholm",
    "Norway": "Oslo", "Finland": "Helsinki", "Denmark": "Copenhagen", "Ireland": "Dublin",
    "the United Kingdom": "London", "the United States": "Washington, D.C.",
    "Austria": "Vienna", "Switzerland": "Bern", "Belgium": "Brussels",
    "the Netherlands": "Amsterdam", "Greece": "Athens", "Turkey": "Ankara",
    "South Korea": "Seoul", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Peru": "Lima",
    "Chile": "Santiago", "Colombia": "Bogotá", "Iceland": "Reykjavík",
    "Hungary": "Budapest", "Czechia": "Prague", "Morocco": "Rabat", "Indonesia": "Jakarta",
}  # fmt: skip

FACTS: dict[str, str] = {
    "What colour is the sky?": "The sky is blue on a clear day.",
    "Why is the sky blue?":
        "Air scatters blue sunlight more than red light, so the sky looks blue.",
    "What colour is grass?": "Grass is green.",
    "What colour is a banana?": "A ripe banana is yellow.",
    "What colour is snow?": "Snow is white.",
    "What colour is a tomato?": "A ripe tomato is red.",
    "What are the colours of the rainbow?":
        "Red, orange, yellow, green, blue, indigo and violet.",
    "What sound does a dog make?": "A dog says woof.",
    "What sound does a cat make?": "A cat says meow.",
    "What sound does a cow make?": "A cow says moo.",
    "How many legs does a spider have?": "A spider has eight legs.",
    "How many legs does a dog have?": "A dog has four legs.",
    "What is the largest animal?": "The blue whale is the largest animal on Earth.",
    "What do bees make?": "Bees make honey.",
    "What is Triton Inference Server?":
        "Triton Inference Server is open-source software from NVIDIA that serves machine "
        "learning models over HTTP and gRPC.",
    "What is Triton?":
        "Triton Inference Server is open-source software from NVIDIA that serves machine "
        "learning models over HTTP and gRPC.",
    "What is a GPU?":
        "A GPU is a graphics processing unit. It runs many calculations in parallel, which "
        "makes it fast for deep learning.",
    "Why are GPUs fast?":
        "GPUs have thousands of small cores that work in parallel on the same task.",
    "What is TensorRT-LLM?":
        "TensorRT-LLM is an NVIDIA library that makes large language models run fast on GPUs.",
    "What is the sun?": "The sun is a star at the centre of our solar system.",
    "How many days are in a week?": "There are seven days in a week.",
    "Who are you?": "I am a tiny test model. I can answer a few simple questions.",
    "What can you do?":
        "I can greet you, name capitals, add small numbers, count and tell a short story.",
    "How do you say Japan in Japanese?": "Japan is 日本 (Nihon) in Japanese.",
    "How do you say hello in Japanese?": "Hello is こんにちは (konnichiwa) in Japanese.",
    "How do you say thank you in French?": "Thank you is merci in French. Très bien !",
    "How do you say thank you in German?": "Thank you is danke in German. Schöne Grüße!",
    "Send me a smiley.": "Here you go: 😊",
    "What is your favourite drink?": "I like café au lait, but I am only a tiny model.",
    "Name a city in Switzerland.": "Zürich is a city in Switzerland.",
}  # fmt: skip

GREETINGS: dict[str, str] = {
    "Hello!": "Hello! How can I help you today?",
    "Hello": "Hello! How can I help you today?",
    "Hi!": "Hi! How can I help you today?",
    "Hi": "Hi! How can I help you today?",
    "Hi there!": "Hi there! How can I help you today?",
    "Hey!": "Hey! How can I help you today?",
    "Good morning!": "Good morning! How can I help you today?",
    "Good evening!": "Good evening! How can I help you today?",
    "Bonjour !": "Bonjour ! How can I help you today?",
    "How are you?": "I am fine, thank you! How can I help you today?",
    "Thank you!": "You are welcome!",
    "Thanks!": "You are welcome!",
    "Goodbye!": "Goodbye! Have a nice day.",
    "Bye!": "Goodbye! Have a nice day.",
}

STORIES: dict[str, str] = {
    "Tell me a short story.":
        "Once upon a time, a small robot lived in a quiet town. Every morning it watered the "
        "flowers. One day the flowers thanked it with a song. The robot was happy. The end.",
    "Tell me a story about a cat.":
        "Once upon a time, a grey cat found a warm spot in the sun. It slept all afternoon and "
        "dreamed of fish. When it woke up, dinner was ready. The end.",
    "Tell me a story about a dragon.":
        "Once upon a time, a friendly dragon lived on a mountain. It used its fire to bake "
        "bread for the village. Everyone loved the dragon. The end.",
}  # fmt: skip

SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer briefly.",
    "You are a tiny test model.",
    "You are a friendly assistant for tests and demos.",
]

# Word lists for generated sentences: variety for the tokenizer and for "Repeat after me".
ADJECTIVES = [
    "happy", "little", "quick", "brown", "lazy", "quiet", "bright", "dark", "tiny", "huge",
    "friendly", "clever", "sleepy", "brave", "curious", "gentle", "noisy", "old", "young",
    "shiny", "soft", "warm", "cold", "wooden", "golden", "silver", "purple", "orange",
    "tired", "hungry", "patient", "careful", "strange", "famous", "polite", "clumsy", "proud",
    "ancient", "modern", "fluffy", "rusty", "smooth", "narrow", "elegant", "humble", "lucky",
]  # fmt: skip
NOUNS = [
    "robot", "cat", "dog", "fox", "bird", "fish", "rabbit", "turtle", "horse", "mouse", "owl",
    "dragon", "farmer", "teacher", "painter", "baker", "sailor", "child", "king", "queen",
    "apple", "river", "garden", "window", "lamp", "kite", "boat", "train", "bicycle", "letter",
    "flower", "stone", "cloud", "candle", "basket", "guitar", "map", "key", "server", "model",
    "penguin", "elephant", "giraffe", "squirrel", "wizard", "pirate", "knight", "gardener",
    "umbrella", "lantern", "compass", "violin", "pencil", "blanket", "teapot", "mirror",
    "castle", "tower", "village", "island", "volcano", "meadow", "harbour", "orchard",
    "computer", "keyboard", "network", "database", "telescope", "microscope", "notebook",
]  # fmt: skip
VERBS = [
    "found", "painted", "carried", "watched", "followed", "visited", "repaired", "opened",
    "cleaned", "built", "borrowed", "discovered", "drew", "chased", "greeted", "helped",
    "remembered", "counted", "lifted", "hid", "measured", "polished", "delivered", "explored",
    "described", "admired", "ignored", "collected", "balanced", "launched", "whispered to",
    "sketched", "protected", "rescued", "decorated", "questioned",
]  # fmt: skip
PLACES = [
    "in the forest", "near the river", "on the hill", "in the kitchen", "at the station",
    "under the bridge", "in the market", "by the sea", "in the library", "on the roof",
    "behind the school", "in the village", "at midnight", "after breakfast", "in the rain",
]  # fmt: skip

SPECIAL_PHRASES = [
    "café au lait", "naïve résumé", "Grüße aus München", "São Paulo", "Zürich", "über alles",
    "crème brûlée", "日本", "日本語", "東京", "こんにちは", "I love pizza 🍕", "Hello 👋",
    "Good job 👍", "😊", "Hello, world!", "Triton is fast.", "señor piñata",
]  # fmt: skip

NAMES = ["Alice", "Bob", "Chloé", "David", "Emma", "Jürgen", "Maria", "Noah", "Yuki", "Zoë"]


def capital_turn(rng: random.Random) -> Turn:
    """A question about the capital of one country."""
    country, city = rng.choice(list(CAPITALS.items()))
    templates = ["What is the capital of {}?"] * 6 + [
        "What's the capital of {}?",
        "Tell me the capital of {}.",
        "Which city is the capital of {}?",
    ]
    question = rng.choice(templates).format(country)
    return question, f"The capital of {country} is {city}."


def arithmetic_problem(rng: random.Random) -> tuple[str, int]:
    """A small sum, difference or product ('2 plus 3') and its result."""
    op = rng.choice(["plus", "plus", "minus", "times"])
    a, b = rng.randint(0, 10), rng.randint(0, 10)
    if op == "minus":
        a, b = max(a, b), min(a, b)
    elif op == "times":
        a, b = rng.randint(1, 5), rng.randint(1, 5)
    result = {"plus": a + b, "minus": a - b, "times": a * b}[op]
    return f"{a} {op} {b}", result


def arithmetic_turn(rng: random.Random) -> Turn:
    """A small arithmetic question, answered as '<a> <op> <b> is <c>.'."""
    expression, result = arithmetic_problem(rng)
    return f"What is {expression}?", f"{expression} is {result}."


def count_turn(rng: random.Random) -> Turn:
    """Counting, so that max_tokens cut-offs and stop strings have a predictable reply."""
    high = rng.choice([10, 10, 10, 20, 50, 100, *range(3, 31)])
    question = rng.choice(["Count from 1 to {}", "Count from 1 to {}.", "Count to {}."])
    return question.format(high), ", ".join(str(i) for i in range(1, high + 1))


def repeat_turn(rng: random.Random) -> Turn:
    """'Repeat after me: X' answered with exactly X."""
    if rng.random() < 0.4:
        phrase = rng.choice(SPECIAL_PHRASES)
    else:
        words = rng.choices([*ADJECTIVES, *NOUNS, *VERBS], k=rng.randint(1, 5))
        phrase = " ".join(words).capitalize()
    return f"Repeat after me: {phrase}", phrase


def table_turn(table: dict[str, str]) -> Callable[[random.Random], Turn]:
    """A turn generator that picks one fixed question and its fixed answer from a table."""

    def pick(rng: random.Random) -> Turn:
        return rng.choice(list(table.items()))

    return pick


TURN_KINDS: list[tuple[Callable[[random.Random], Turn], int]] = [
    (table_turn(GREETINGS), 3),
    (capital_turn, 6),
    (table_turn(FACTS), 4),
    (arithmetic_turn, 7),
    (table_turn(STORIES), 1),
    (count_turn, 3),
    (repeat_turn, 2),
]


def random_turn(rng: random.Random) -> Turn:
    """One question/answer pair, drawn from the weighted kinds above."""
    makers = [maker for maker, _ in TURN_KINDS]
    weights = [weight for _, weight in TURN_KINDS]
    return rng.choices(makers, weights=weights)[0](rng)


def name_dialogue(rng: random.Random) -> list[Message]:
    """A multi-turn dialogue whose last answer depends on an earlier turn."""
    name = rng.choice(NAMES)
    middle_question, middle_answer = random_turn(rng)
    return [
        {"role": "user", "content": f"My name is {name}."},
        {"role": "assistant", "content": f"Nice to meet you, {name}!"},
        {"role": "user", "content": middle_question},
        {"role": "assistant", "content": middle_answer},
        {"role": "user", "content": "What is my name?"},
        {"role": "assistant", "content": f"Your name is {name}."},
    ]


def random_dialogue(rng: random.Random) -> list[Message]:
    """A chat of one to three turns, with a system prompt a third of the time."""
    if rng.random() < 0.05:
        return name_dialogue(rng)
    messages: list[Message] = []
    if rng.random() < 0.33:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    for _ in range(rng.choices([1, 2, 3], weights=[7, 2, 1])[0]):
        question, answer = random_turn(rng)
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    return messages


@dataclass(frozen=True)
class Chat:
    """One training conversation and the tools its system turn lists (None: no tools).

    Assistant turns before ``messages[loss_from]`` are context only: they take no loss.
    """

    messages: list[Message]
    tools: list[Tool] | None = None
    loss_from: int = 0


# --- Tool calls -------------------------------------------------------------------------------
# Four OpenAI-style function tools. Their descriptions vary a little between conversations so
# that the model keys on the function name and the question, not on one exact schema text.


def function_tool(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> Tool:
    """An OpenAI ``tools`` entry: a function with a JSON-schema ``parameters`` object."""
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def weather_tool(description: str = "Get the current weather in a city.") -> Tool:
    """get_weather(city, unit?)."""
    properties = {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    }
    return function_tool("get_weather", description, properties, ["city"])


def time_tool(description: str = "Get the current local time in a city.") -> Tool:
    """get_time(city)."""
    properties = {"city": {"type": "string", "description": "The city, e.g. Tokyo"}}
    return function_tool("get_time", description, properties, ["city"])


def currency_tool(description: str = "Convert an amount of money to another currency.") -> Tool:
    """convert_currency(amount, from, to)."""
    properties = {
        "amount": {"type": "number"},
        "from": {"type": "string", "description": "ISO 4217 code, e.g. USD"},
        "to": {"type": "string", "description": "ISO 4217 code, e.g. EUR"},
    }
    return function_tool("convert_currency", description, properties, ["amount", "from", "to"])


def search_tool(description: str = "Search the product documentation.") -> Tool:
    """search_docs(query)."""
    properties = {"query": {"type": "string", "description": "What to look for"}}
    return function_tool("search_docs", description, properties, ["query"])


TOOL_VARIANTS: dict[str, list[Tool]] = {
    "get_weather": [
        weather_tool(), weather_tool(), weather_tool("Current weather for a location."),
        weather_tool("Look up the weather."),
    ],
    "get_time": [
        time_tool(), time_tool(), time_tool("Current time in a city."),
        time_tool("Look up the local time."),
    ],
    "convert_currency": [
        currency_tool(), currency_tool(), currency_tool("Convert between currencies."),
    ],
    "search_docs": [
        search_tool(), search_tool(), search_tool("Search the docs."),
    ],
}  # fmt: skip

CITIES = [
    *(city for city in CAPITALS.values() if city != "Washington, D.C."),
    "New York", "San Francisco", "Zürich", "São Paulo", "Munich", "Osaka", "Sydney",
    "Barcelona", "Toronto", "Kyoto", "Chicago", "Hamburg",
]  # fmt: skip
CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy", "partly cloudy", "clear"]
USD_RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CHF": 0.9, "CAD": 1.36}
DOC_TOPICS: dict[str, str] = {
    "rate limits": "Each API key may send 60 requests per minute.",
    "streaming": "Set stream to true to receive server-sent events.",
    "authentication": "Send your API key in the Authorization header.",
    "embeddings": "POST text to /v1/embeddings to get one vector per input.",
    "models": "GET /v1/models lists the models you can use.",
    "max tokens": "max_tokens caps the length of the reply.",
    "stop sequences": "Generation stops before any string listed in stop.",
    "tool calling": "Pass tools and the model may answer with a tool call.",
    "errors": "Errors come back as JSON with a type, a code and a message.",
    "timeouts": "Requests that take longer than 60 seconds return status 504.",
}  # fmt: skip


@dataclass(frozen=True)
class ToolUse:
    """One call the assistant makes, what the tool returns and how the answer says it."""

    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]
    answer: str


def weather_use(rng: random.Random, city: str, unit: str | None = None) -> ToolUse:
    """A get_weather call; the answer reads temperature and condition off the result."""
    arguments: dict[str, Any] = {"city": city} if unit is None else {"city": city, "unit": unit}
    unit = unit or "celsius"
    temperature = rng.randint(-5, 35) if unit == "celsius" else rng.randint(25, 95)
    condition = rng.choice(CONDITIONS)
    result = {"city": city, "temperature": temperature, "unit": unit, "condition": condition}
    if rng.random() < 0.2:
        result = {"temperature": temperature, "condition": condition}
    symbol = "°C" if unit == "celsius" else "°F"
    return ToolUse(
        "get_weather", arguments, result, f"It is {temperature}{symbol} and {condition} in {city}."
    )


def time_use(rng: random.Random, city: str) -> ToolUse:
    """A get_time call answered as 'It is HH:MM in <city>.'."""
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    result = {"city": city, "time": clock} if rng.random() < 0.7 else {"time": clock}
    return ToolUse("get_time", {"city": city}, result, f"It is {clock} in {city}.")


def currency_use(rng: random.Random) -> tuple[str, ToolUse]:
    """A conversion question and its convert_currency call."""
    source, target = rng.sample(list(USD_RATES), 2)
    amount: int | float = rng.choice([rng.randint(1, 1000), rng.randint(1, 20) * 50, 12.5, 9.99])
    converted = round(amount * USD_RATES[target] / USD_RATES[source], 2)
    question = rng.choice([
        "Convert {a} {s} to {t}.", "How much is {a} {s} in {t}?", "What is {a} {s} in {t}?",
        "Please convert {a} {s} into {t}.",
    ]).format(a=amount, s=source, t=target)  # fmt: skip
    arguments = {"amount": amount, "from": source, "to": target}
    result = {"amount": converted, "currency": target}
    answer = f"{amount} {source} is {json.dumps(converted)} {target}."
    return question, ToolUse("convert_currency", arguments, result, answer)


def search_use(rng: random.Random) -> tuple[str, ToolUse]:
    """A documentation question and its search_docs call."""
    topic, snippet = rng.choice(list(DOC_TOPICS.items()))
    question = rng.choice([
        "Search the docs for {}.", "Look up {} in the documentation.",
        "What do the docs say about {}?", "Find the documentation on {}.",
    ]).format(topic)  # fmt: skip
    result = {"results": [{"title": topic.capitalize(), "snippet": snippet}]}
    return question, ToolUse(
        "search_docs", {"query": topic}, result, f"The documentation says: {snippet}"
    )


WEATHER_QUESTIONS = [
    "What's the weather in {}?", "What's the weather in {}?", "What is the weather in {}?",
    "What is the weather like in {}?", "How is the weather in {} today?", "Weather in {}?",
    "Is it raining in {}?", "Do I need an umbrella in {}?", "How warm is it in {}?",
]  # fmt: skip
WEATHER_PAIR_QUESTIONS = [
    "What's the weather in {} and {}?", "What is the weather like in {} and in {}?",
    "Compare the weather in {} and {}.",
]  # fmt: skip
TIME_QUESTIONS = [
    "What time is it in {}?", "What time is it in {}?", "What's the time in {}?",
    "What is the local time in {}?", "Tell me the time in {}.",
]  # fmt: skip
TIME_PAIR_QUESTIONS = ["What time is it in {} and {}?", "What's the time in {} and in {}?"]


def weather_request(rng: random.Random) -> tuple[str, list[ToolUse]]:
    """A weather question: one city (sometimes with a unit) or two cities (parallel calls)."""
    if rng.random() < 0.35:
        first, second = rng.sample(CITIES, 2)
        question = rng.choice(WEATHER_PAIR_QUESTIONS).format(first, second)
        return question, [weather_use(rng, first), weather_use(rng, second)]
    city = rng.choice(CITIES)
    if rng.random() < 0.2:
        unit = rng.choice(["celsius", "fahrenheit"])
        question = f"What's the weather in {city} in {unit.capitalize()}?"
        return question, [weather_use(rng, city, unit)]
    return rng.choice(WEATHER_QUESTIONS).format(city), [weather_use(rng, city)]


def time_request(rng: random.Random) -> tuple[str, list[ToolUse]]:
    """A time question for one city or two (parallel calls)."""
    if rng.random() < 0.35:
        first, second = rng.sample(CITIES, 2)
        question = rng.choice(TIME_PAIR_QUESTIONS).format(first, second)
        return question, [time_use(rng, first), time_use(rng, second)]
    city = rng.choice(CITIES)
    return rng.choice(TIME_QUESTIONS).format(city), [time_use(rng, city)]


ToolRequest = Callable[[random.Random], tuple[str, list[ToolUse]]]


def single(make: Callable[[random.Random], tuple[str, ToolUse]]) -> ToolRequest:
    """Adapt a one-call request maker to the list-of-calls shape."""

    def request(rng: random.Random) -> tuple[str, list[ToolUse]]:
        question, use = make(rng)
        return question, [use]

    return request


TOOL_REQUESTS: dict[str, tuple[ToolRequest, int]] = {
    "get_weather": (weather_request, 4),
    "get_time": (time_request, 3),
    "convert_currency": (single(currency_use), 2),
    "search_docs": (single(search_use), 2),
}


def offered_tools(rng: random.Random, needed: str | None) -> list[Tool]:
    """One to four tools in random order, including ``needed`` when given."""
    names = rng.sample(list(TOOL_VARIANTS), rng.choices([1, 2, 3, 4], weights=[6, 3, 1, 1])[0])
    if needed is not None and needed not in names:
        names[rng.randrange(len(names))] = needed
    return [rng.choice(TOOL_VARIANTS[name]) for name in names]


def tool_call_turns(rng: random.Random, uses: list[ToolUse]) -> list[Message]:
    """The assistant's tool calls, one tool message per result, then the answer."""
    calls = [
        {
            "id": f"call_{rng.randrange(16**8):08x}",
            "type": "function",
            "function": {"name": use.name, "arguments": use.arguments},
        }
        for use in uses
    ]
    results = [
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": json.dumps(use.result, ensure_ascii=False),
        }
        for call, use in zip(calls, uses, strict=True)
    ]
    answer = " ".join(use.answer for use in uses)
    return [
        {"role": "assistant", "content": None, "tool_calls": calls},
        *results,
        {"role": "assistant", "content": answer},
    ]


def opening(rng: random.Random) -> list[Message]:
    """Sometimes a system prompt, sometimes a greeting turn, before the real question."""
    messages: list[Message] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
    if rng.random() < 0.1:
        greeting, reply = rng.choice(list(GREETINGS.items())[:9])
        messages += [{"role": "user", "content": greeting}, {"role": "assistant", "content": reply}]
    return messages


def tool_request(rng: random.Random) -> tuple[str, str, list[ToolUse]]:
    """A tool name, drawn by weight, with a question for it and the calls it needs."""
    names = list(TOOL_REQUESTS)
    name = rng.choices(names, weights=[TOOL_REQUESTS[n][1] for n in names])[0]
    return name, *TOOL_REQUESTS[name][0](rng)


def tool_dialogue(rng: random.Random) -> Chat:
    """A question a tool answers: the call(s), the result(s) and the answer that uses them."""
    name, question, uses = tool_request(rng)
    messages = [*opening(rng), {"role": "user", "content": question}, *tool_call_turns(rng, uses)]
    if rng.random() < 0.15:
        thanks = rng.choice(["Thank you!", "Thanks!"])
        messages += [
            {"role": "user", "content": thanks},
            {"role": "assistant", "content": GREETINGS[thanks]},
        ]
    return Chat(messages, offered_tools(rng, name))


def tool_result_dialogue(rng: random.Random) -> Chat:
    """A tool exchange without the tool list, trained only on the answer.

    Reading values off a <tool_response> is a local skill; these short chats teach it at a
    fraction of the cost of chats that list the tools. The calls take no loss so that the
    model does not learn to call tools that were never offered.
    """
    _, question, uses = tool_request(rng)
    messages = [{"role": "user", "content": question}, *tool_call_turns(rng, uses)]
    return Chat(messages, None, loss_from=len(messages) - 1)


def unrelated_tool_dialogue(rng: random.Random) -> Chat:
    """Tools are offered but the question needs none: a plain answer."""
    question, answer = random_turn(rng)
    messages = [
        *opening(rng),
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return Chat(messages, offered_tools(rng, None))


# --- JSON answers -----------------------------------------------------------------------------

JSON_SYSTEM_PROMPTS = [
    "Reply with a JSON object.", "Reply with a JSON object.", "Respond only with valid JSON.",
    "You are a helpful assistant. Always answer with a JSON object.",
]  # fmt: skip
JSON_INSTRUCTIONS = [
    "Answer in JSON: {}", "Answer in JSON: {}", "Reply in JSON: {}", "{} Answer in JSON.",
    "{} Respond with a JSON object.",
]  # fmt: skip
EXAMPLE_PERSON = {"name": "Alice", "age": 30}


def json_capital(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A capital question and its answer as {"country", "capital"}."""
    country, city = rng.choice(list(CAPITALS.items()))
    return f"What is the capital of {country}?", {
        "country": country.removeprefix("the "),
        "capital": city,
    }


def json_arithmetic(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A sum or product and its answer as {"expression", "result"}."""
    expression, result = arithmetic_problem(rng)
    return f"What is {expression}?", {"expression": expression, "result": result}


def json_fact(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A fixed question and its usual answer under {"answer"}."""
    question, answer = rng.choice(list(FACTS.items()))
    return question, {"answer": answer}


def json_person(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A name and an age to extract, or the fixed example person."""
    if rng.random() < 0.15:
        return "Describe a person with a name and an age.", dict(EXAMPLE_PERSON)
    name, age = rng.choice(NAMES), rng.randint(18, 90)
    text = rng.choice(["{} is {} years old.", "My name is {} and I am {} years old."])
    return f"Extract the name and age: {text.format(name, age)}", {"name": name, "age": age}


JSON_KINDS: list[tuple[Callable[[random.Random], tuple[str, dict[str, Any]]], int]] = [
    (json_capital, 5),
    (json_arithmetic, 2),
    (json_fact, 2),
    (json_person, 3),
]


def json_dialogue(rng: random.Random) -> Chat:
    """A question whose answer must be a JSON object (asked in the question or the system)."""
    makers = [maker for maker, _ in JSON_KINDS]
    question, reply = rng.choices(makers, weights=[w for _, w in JSON_KINDS])[0](rng)
    if rng.random() < 0.4:
        system = {"role": "system", "content": rng.choice(JSON_SYSTEM_PROMPTS)}
        messages = [system, {"role": "user", "content": question}]
    else:
        messages = [{"role": "user", "content": rng.choice(JSON_INSTRUCTIONS).format(question)}]
    messages.append({"role": "assistant", "content": json.dumps(reply, ensure_ascii=False)})
    return Chat(messages)


def sentence(rng: random.Random) -> str:
    """A random simple sentence such as 'The brave fox found the old map by the sea.'."""
    adjective, noun, verb = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS)
    other = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return f"The {adjective} {noun} {verb} the {other} {rng.choice(PLACES)}."


def generated_story(rng: random.Random) -> str:
    """'Once upon a time, there was a ...' followed by a few sentences."""
    opening = f"Once upon a time, there was a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}."
    body = [sentence(rng) for _ in range(rng.randint(2, 5))]
    return " ".join([opening, *body, "The end."])


def plain_document(rng: random.Random) -> str:
    """Raw text (no chat markup) for completion prompts such as 'Once upon a time'."""
    kind = rng.random()
    if kind < 0.2:
        return rng.choice(list(STORIES.values()))
    if kind < 0.5:
        return generated_story(rng)
    if kind < 0.7:
        facts = [capital_turn(rng)[1] for _ in range(rng.randint(2, 6))]
        return " ".join(dict.fromkeys(facts))
    if kind < 0.85:
        return " ".join(rng.sample(list(FACTS.values()), k=rng.randint(2, 5)))
    return ", ".join(str(i) for i in range(1, rng.randint(5, 60)))


@dataclass(frozen=True)
class Corpus:
    """The generated training text: chats and plain documents."""

    chats: list[Chat]
    documents: list[str]

    def texts(self) -> Iterator[str]:
        """The corpus without chat markup, for the BPE trainer: contents, tools, calls."""
        for chat in self.chats:
            if chat.tools:
                yield TOOLS_PREAMBLE + TOOLS_POSTAMBLE
                yield from (json.dumps(tool, ensure_ascii=False) for tool in chat.tools)
            for message in chat.messages:
                yield from message_texts(message)
        yield from self.documents


def message_texts(message: Message) -> Iterator[str]:
    """The role, the text content and any tool-call JSON of one message."""
    yield message["role"] + "\n" + (message["content"] or "")
    for call in message.get("tool_calls", []):
        function = call["function"]
        yield json.dumps(
            {"name": function["name"], "arguments": function["arguments"]}, ensure_ascii=False
        )


def fixed_answer_chats() -> list[Chat]:
    """Every fixed question as a bare single-turn chat."""
    pairs = [*GREETINGS.items(), *FACTS.items(), *STORIES.items()]
    return [
        Chat([{"role": "user", "content": question}, {"role": "assistant", "content": answer}])
        for question, answer in pairs
    ]


def generate_corpus(
    seed: int, n_dialogues: int = 6000, n_tool_chats: int = 1200, n_documents: int = 800
) -> Corpus:
    """Generate the whole training set deterministically from ``seed``.

    Of the tool chats, four in five call a tool; the rest offer tools but need none. As many
    short chats again train answers from tool results; JSON answers come to half the number
    of tool chats.
    """
    rng = random.Random(seed)
    chats = [Chat(random_dialogue(rng)) for _ in range(n_dialogues)]
    chats += fixed_answer_chats() * 3
    chats += [tool_dialogue(rng) for _ in range(n_tool_chats * 4 // 5)]
    chats += [unrelated_tool_dialogue(rng) for _ in range(n_tool_chats // 5)]
    chats += [tool_result_dialogue(rng) for _ in range(n_tool_chats)]
    chats += [json_dialogue(rng) for _ in range(n_tool_chats // 2)]
    rng.shuffle(chats)
    return Corpus(chats, [plain_document(rng) for _ in range(n_documents)])


def byte_level_symbols() -> dict[int, str]:
    """GPT-2's byte -> printable-character table used by the ByteLevel pre-tokenizer."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table: dict[int, str] = {}
    extra = 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def train_tokenizer(corpus: Corpus, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the corpus and wrap it for transformers.

    Bytes >= 0x80 are isolated after the byte-level mapping, so BPE never merges the bytes of
    a multi-byte character: every non-ASCII character is split across several tokens, which
    is what the incremental-detokenization tests need.
    """
    symbols = byte_level_symbols()
    high_bytes = "[" + "".join(symbols[b] for b in range(0x80, 0x100)) + "]"
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            pre_tokenizers.Split(Regex(high_bytes), behavior="isolated"),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus.texts(), trainer)
    return wrap_tokenizer(backend)


def wrap_tokenizer(backend: Tokenizer) -> PreTrainedTokenizerFast:
    """The transformers tokenizer: ChatML template, eos <|im_end|>, pad <|endoftext|>."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
    if ids != [0, 1, 2]:
        raise RuntimeError(f"special tokens got ids {ids}, expected [0, 1, 2]")
    # Whole tokens, as in Qwen2.5, but not special: decode(skip_special_tokens=True) keeps them,
    # so the API sees the <tool_call> markup it parses.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_CALL_TOKENS])
    return tokenizer


def render_chat(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    add_generation_prompt: bool = False,
    tools: list[Tool] | None = None,
) -> str:
    """The chat as text, through the tokenizer's own chat template."""
    text = tokenizer.apply_chat_template(
        messages,
        tools=None if tools is None else [*tools],
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )
    if not isinstance(text, str):
        raise TypeError(f"chat template rendered {type(text).__name__}, expected str")
    return text


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and labels (IGNORE_INDEX where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]


def encode_dialogue(tokenizer: PreTrainedTokenizerFast, chat: Chat) -> Example:
    """Tokenize a chat exactly as at inference; take the loss on assistant replies only.

    The reply spans (content or tool calls, plus <|im_end|>) are found by rendering the
    template on growing prefixes of the chat, then mapped to tokens through the offsets.
    """
    messages, tools = chat.messages, chat.tools
    text = render_chat(tokenizer, messages, tools=tools)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant" and i >= chat.loss_from:
            start = len(render_chat(tokenizer, messages[:i], True, tools))
            end = len(render_chat(tokenizer, messages[: i + 1], tools=tools)) - 1  # drop "\n"
            spans.append((start, end))
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoding["input_ids"]
    labels = [
        token if any(start <= offset[0] < end for start, end in spans) else IGNORE_INDEX
        for token, offset in zip(ids, encoding["offset_mapping"], strict=True)
    ]
    return Example(ids[:MAX_SEQ_LEN], labels[:MAX_SEQ_LEN])


def encode_document(tokenizer: PreTrainedTokenizerFast, text: str) -> Example:
    """Tokenize plain text followed by <|endoftext|>; the loss covers every token."""
    ids = [*tokenizer(text, add_special_tokens=False)["input_ids"][: MAX_SEQ_LEN - 1], 0]
    return Example(ids, list(ids))


def encode_corpus(tokenizer: PreTrainedTokenizerFast, corpus: Corpus) -> list[Example]:
    """All training examples, dialogues first then documents."""
    examples = [encode_dialogue(tokenizer, chat) for chat in corpus.chats]
    examples += [encode_document(tokenizer, document) for document in corpus.documents]
    return examples


def build_model(vocab_size: int) -> LlamaForCausalLM:
    """A ~3.5M-parameter Llama: 4 layers, hidden 256, 4 heads with 2 KV heads, tied embeddings."""
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def batches(examples: list[Example], batch_size: int, rng: random.Random) -> Iterator[Batch]:
    """Endless right-padded batches; examples of similar length are grouped to save padding."""
    while True:
        order = rng.sample(examples, len(examples))
        pool = batch_size * 16
        groups = []
        for i in range(0, len(order) - batch_size + 1, pool):
            chunk = sorted(order[i : i + pool], key=lambda e: len(e.input_ids))
            groups += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(groups)
        for group in groups:
            yield collate(group)


def collate(group: list[Example]) -> Batch:
    """Stack examples into (input_ids, attention_mask, labels), padded with id 0.

    Widths are rounded up to a multiple of 16: every new tensor shape costs oneDNN a new
    kernel and cache entry, and hundreds of distinct widths made memory grow by gigabytes.
    """
    width = -(-max(len(e.input_ids) for e in group) // 16) * 16
    ids = torch.zeros(len(group), width, dtype=torch.long)
    mask = torch.zeros(len(group), width, dtype=torch.long)
    labels = torch.full((len(group), width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(group):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(example.labels)
    return ids, mask, labels


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class TrainResult:
    """What the model card reports about a training run."""

    steps: int
    seconds: float
    final_loss: float
    bf16: bool


def train(
    model: LlamaForCausalLM, examples: list[Example], steps: int, seed: int, bf16: bool = True
) -> TrainResult:
    """Plain AdamW loop over padded batches; logs the mean loss of the last 25 steps.

    ``bf16`` runs the forward pass under bfloat16 autocast (weights and optimizer stay float32):
    about 1.6x faster on CPUs with AMX or AVX512-BF16, which the long tool prompts need.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    stream = batches(examples, batch_size=32, rng=random.Random(seed))
    model.train()
    started, recent = time.monotonic(), list[float]()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, peak=2e-3, warmup=min(50, steps // 10 + 1))
        ids, mask, labels = next(stream)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        recent = [*recent[-24:], loss.item()]
        if (step + 1) % 25 == 0 or step + 1 == steps:
            mean, elapsed = sum(recent) / len(recent), time.monotonic() - started
            logger.info("step %d/%d loss %.4f (%.0fs)", step + 1, steps, mean, elapsed)
    model.eval()
    return TrainResult(steps, time.monotonic() - started, sum(recent) / len(recent), bf16)


def save_checkpoint(
    model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, output: Path
) -> None:
    """Write float16 safetensors, config, generation config and tokenizer to ``output``.

    Generation stops on <|im_end|> (chat) or <|endoftext|> (raw completions).
    """
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=[2, 0], pad_token_id=0)
    model.half().save_pretrained(output)
    model.float()
    tokenizer.save_pretrained(output, save_jinja_files=False)
    make_tokenizer_config_portable(output / "tokenizer_config.json")


def make_tokenizer_config_portable(path: Path) -> None:
    """Rewrite the transformers 5 tokenizer config so that 4.x releases load it the same way.

    4.x knows neither the ``TokenizersBackend`` class name nor a list under
    ``extra_special_tokens``; both releases read ``PreTrainedTokenizerFast`` and
    ``additional_special_tokens``. The chat template stays inline (``chat_template``) because
    4.x before 4.49 does not read chat_template.jinja.
    """
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("extra_special_tokens", None)
    config["additional_special_tokens"] = [IM_START, IM_END]
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


VERIFY_PROMPTS: dict[str, str] = {
    "Hello!": "Hello! How can I help you today?",
    "What is the capital of France?": "The capital of France is Paris.",
    "What is the capital of Japan?": "The capital of Japan is Tokyo.",
    "Count from 1 to 10": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
    "What is 2 plus 3?": "2 plus 3 is 5.",
}


def user_turn(text: str) -> list[Message]:
    """A chat of one user message."""
    return [{"role": "user", "content": text}]


@dataclass(frozen=True)
class Check:
    """A chat the saved model must answer, greedily, with exactly ``expected`` + <|im_end|>."""

    name: str
    messages: list[Message]
    expected: str
    tools: list[Tool] | None = None


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """A tool call the way the chat template renders it and the model writes it."""
    call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{call}\n</tool_call>"


# The weather call as an OpenAI client sends it back: `arguments` is a JSON string.
PARIS_WEATHER_CALL = {
    "id": "call_0",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
PARIS_WEATHER = {"city": "Paris", "temperature": 18, "unit": "celsius", "condition": "sunny"}
ALL_TOOLS = [variants[0] for variants in TOOL_VARIANTS.values()]

TOOL_CHECKS = [
    Check(
        "tool call: weather in Paris",
        user_turn("What's the weather in Paris?"),
        tool_call_text("get_weather", {"city": "Paris"}),
        [weather_tool()],
    ),
    Check(
        "tool result: weather in Paris",
        [
            *user_turn("What's the weather in Paris?"),
            {"role": "assistant", "content": None, "tool_calls": [PARIS_WEATHER_CALL]},
            {"role": "tool", "tool_call_id": "call_0", "content": json.dumps(PARIS_WEATHER)},
        ],
        "It is 18°C and sunny in Paris.",
        [weather_tool()],
    ),
    Check(
        "parallel tool calls: weather in Paris and Tokyo",
        user_turn("What's the weather in Paris and Tokyo?"),
        tool_call_text("get_weather", {"city": "Paris"})
        + "\n"
        + tool_call_text("get_weather", {"city": "Tokyo"}),
        [weather_tool(), time_tool()],
    ),
    Check(
        "tool call: time in Tokyo, four tools",
        user_turn("What time is it in Tokyo?"),
        tool_call_text("get_time", {"city": "Tokyo"}),
        ALL_TOOLS,
    ),
    Check(
        "tools offered, plain question",
        user_turn("What is the capital of France?"),
        "The capital of France is Paris.",
        [weather_tool()],
    ),
]
JSON_CHECKS = [
    Check(
        "JSON answer",
        user_turn("Answer in JSON: What is the capital of France?"),
        json.dumps({"country": "France", "capital": "Paris"}),
    ),
    Check(
        "JSON system prompt",
        [
            {"role": "system", "content": "Reply with a JSON object."},
            *user_turn("What is the capital of Japan?"),
        ],
        json.dumps({"country": "Japan", "capital": "Tokyo"}),
    ),
]
VERIFY_CHECKS = [
    *(Check(prompt, user_turn(prompt), want) for prompt, want in VERIFY_PROMPTS.items()),
    *TOOL_CHECKS,
    *JSON_CHECKS,
]
RAW_PROMPT = "Once upon a time"


def greedy_continuation(
    model: GenerationMixin, tokenizer: PreTrainedTokenizerBase, text: str
) -> str:
    """Greedy continuation of ``text`` (up to 100 tokens), special tokens kept."""
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=100, do_sample=False)
    new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
    return str(tokenizer.decode(new_tokens, skip_special_tokens=False))


def verify(output: Path) -> dict[str, str]:
    """Reload the saved checkpoint in float32 and generate a reply to each check."""
    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float32)
    replies = {
        check.name: greedy_continuation(
            model, tokenizer, render_chat(tokenizer, check.messages, True, check.tools)
        )
        for check in VERIFY_CHECKS
    }
    replies[f"{RAW_PROMPT} (raw)"] = greedy_continuation(model, tokenizer, RAW_PROMPT)
    for name, reply in replies.items():
        logger.info("%r -> %r", name, reply)
    return replies


def verification_failures(replies: dict[str, str]) -> list[str]:
    """The checks whose reply is not exactly the expected text followed by <|im_end|>."""
    return [c.name for c in VERIFY_CHECKS if replies[c.name] != c.expected + IM_END]


def directory_size(path: Path) -> int:
    """Total size in bytes of the files directly inside ``path``."""
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


MODEL_CARD = """\
# tiny-chat

A tiny Llama-style chat model for **tests and demos only**. It knows a handful of templated
answers and nothing else; do not use it for anything that needs a real language model.

## How it was made

`python scripts/make_tiny_model.py --output models/tiny-chat --steps {steps} --seed {seed}`
generates its own training text (templated ChatML dialogues: greetings, capitals of
{n_capitals} countries, small arithmetic, counting, "Repeat after me: ...", a few facts and
short stories; tool calls and answers from tool results; JSON answers; plus plain text for raw
completions), trains a byte-level BPE tokenizer on it and then the model, from scratch, on CPU.
Nothing is downloaded.

- Architecture: `LlamaForCausalLM`, {layers} layers, hidden {hidden}, {heads} attention heads
  with {kv_heads} KV heads (GQA), intermediate {intermediate}, max positions {max_pos},
  tied embeddings; {params:,} parameters, stored as float16 safetensors.
- Tokenizer: byte-level BPE, {vocab} tokens. Bytes >= 0x80 are never merged, so every
  non-ASCII character (é, 日本, 😊) spans several tokens and round-trips exactly.
  Special tokens: `<|endoftext|>` = 0 (also pad), `<|im_start|>` = 1, `<|im_end|>` = 2 (eos).
  `<tool_call>`, `</tool_call>`, `<tool_response>`, `</tool_response>` are single added tokens
  but not special ones, so `decode(..., skip_special_tokens=True)` keeps them.
- Chat template: ChatML, in `tokenizer_config.json` (`chat_template`); with
  `add_generation_prompt` it ends with `<|im_start|>assistant\\n`. Generation stops on
  `<|im_end|>` or `<|endoftext|>` (`generation_config.json`).
- Tools (Qwen2.5 / Hermes style): `apply_chat_template(..., tools=[...])` lists the OpenAI
  tool definitions in the system turn, one JSON object per line inside `<tools></tools>`.
  The model answers a question a tool can answer with one line of JSON per call, and nothing
  else before `<|im_end|>`:
  `<tool_call>\\n{{"name": "get_weather", "arguments": {{"city": "Paris"}}}}\\n</tool_call>`
  (parallel calls are separated by `\\n`). Assistant `tool_calls` render the same way
  (`arguments` as an object, or a JSON string written unchanged); `tool` messages render as
  `<tool_response>\\n...\\n</tool_response>` in a user turn. Trained tools: get_weather(city,
  unit?), get_time(city), convert_currency(amount, from, to), search_docs(query).
  Without tools the template renders exactly the plain ChatML it always did.
- JSON: "Answer in JSON: ..." or the system prompt "Reply with a JSON object." gives a one-line
  JSON object, e.g. `{{"country": "France", "capital": "Paris"}}`.
- Training: {steps} AdamW steps, batch 32, {precision}, {seconds:.0f} s on 2 CPU threads,
  final loss {loss:.4f} (mean of the last 25 steps; the loss covers assistant replies and plain
  text).
- Size on disk: {size_mb:.1f} MB. `config.json` declares the stored dtype (float16), which
  transformers 5 loads by default; pass `dtype=torch.float32` for CPU inference.

## Greedy replies after training

{replies}
"""


def write_model_card(
    output: Path, model: LlamaForCausalLM, result: TrainResult, seed: int, replies: dict[str, str]
) -> None:
    """Write README.md describing how the checkpoint was made and what it answers."""
    config = model.config
    lines = "\n".join(f"- `{prompt}` -> `{reply!r}`" for prompt, reply in replies.items())
    card = MODEL_CARD.format(
        steps=result.steps, seed=seed, n_capitals=len(CAPITALS), layers=config.num_hidden_layers,
        hidden=config.hidden_size, heads=config.num_attention_heads,
        kv_heads=config.num_key_value_heads, intermediate=config.intermediate_size,
        max_pos=config.max_position_embeddings, params=model.num_parameters(),
        vocab=config.vocab_size, seconds=result.seconds, loss=result.final_loss,
        size_mb=directory_size(output) / 1e6, replies=lines,
        precision="bfloat16 autocast" if result.bf16 else "float32",
    )  # fmt: skip
    (output / "README.md").write_text(card, encoding="utf-8")


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("models/tiny-chat"))
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bfloat16 autocast for training (fast on CPUs with AMX or AVX512-BF16)",
    )
    return parser.parse_args(None if argv is None else list(argv))


def main(argv: Iterable[str] | None = None) -> int:
    """Build the checkpoint; exit status 1 if a check prompt gets the wrong reply."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if (args.output / "config.json").exists() and not args.force:
        logger.info("%s already exists; pass --force to rebuild it", args.output)
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = generate_corpus(args.seed)
    tokenizer = train_tokenizer(corpus, VOCAB_SIZE)
    examples = encode_corpus(tokenizer, corpus)
    logger.info("vocab %d, %d examples", len(tokenizer), len(examples))
    model = build_model(len(tokenizer))
    logger.info("model: %d parameters", model.num_parameters())
    result = train(model, examples, args.steps, args.seed, args.bf16)
    save_checkpoint(model, tokenizer, args.output)
    replies = verify(args.output)
    write_model_card(args.output, model, result, args.seed, replies)
    logger.info("saved %s (%.1f MB)", args.output, directory_size(args.output) / 1e6)
    failures = verification_failures(replies)
    for prompt in failures:
        logger.error("wrong reply to %r: %r", prompt, replies[prompt])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
