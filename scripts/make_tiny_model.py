"""Generate text, train a tiny Llama-style chat model on it and save a Hugging Face checkpoint.

The checkpoint exists for tests and demos of the gateway: it answers a fixed set of templated
questions (greetings, capitals, arithmetic, counting, "repeat after me", short explanations,
haiku, translations, JSON answers) in ChatML, follows a few style-changing system prompts,
calls the tools a request lists (``<tool_call>`` JSON, names and parameters copied from the
tool list) and answers from their results, stops on ``<|im_end|>`` and has a byte-level
tokenizer, so that UTF-8 handling can be tested with characters that span several tokens.
Everything (text, tokenizer, weights) is produced here from a seed; nothing is downloaded.

Usage::

    python scripts/make_tiny_model.py --output models/tiny-chat [--steps N] [--seed S] [--force]
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tiny_models import chat_everyday as everyday
from tiny_models.chat_tools import FAMILIES, Dialogue, no_fit_dialogue, tool_dialogue, tool_texts
from tiny_models.checkpoint import (
    card_facts,
    directory_size,
    greedy_chat_reply,
    greedy_continuation,
    load_checkpoint,
)
from tiny_models.cli import fit_and_save, parse_args, should_build
from tiny_models.tokenizer import IM_END, TOOLS_CHAT_TEMPLATE, Message, train_tokenizer
from tiny_models.training import (
    Example,
    ModelSize,
    TrainResult,
    encode_dialogue,
    encode_document,
)
from transformers import (
    GenerationMixin,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

logger = logging.getLogger(__name__)

VOCAB_SIZE = 3072
# A prompt listing three tools plus a call and its result fits.
MAX_DIALOGUE_TOKENS = 320
SIZE = ModelSize(hidden=256, intermediate=688, layers=4, heads=4, kv_heads=2)
BATCH_SIZE = 16
STEPS = 2400

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


def arithmetic_turn(rng: random.Random) -> Turn:
    """A small sum, difference or product, answered as '<a> <op> <b> is <c>.'."""
    op = rng.choice(["plus", "plus", "minus", "times"])
    a, b = rng.randint(0, 10), rng.randint(0, 10)
    if op == "minus":
        a, b = max(a, b), min(a, b)
    elif op == "times":
        a, b = rng.randint(1, 5), rng.randint(1, 5)
    result = {"plus": a + b, "minus": a - b, "times": a * b}[op]
    return f"What is {a} {op} {b}?", f"{a} {op} {b} is {result}."


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


def json_turn(rng: random.Random) -> Turn:
    return everyday.json_turn(rng, CAPITALS)


TURN_KINDS: list[tuple[Callable[[random.Random], Turn], int]] = [
    (table_turn(GREETINGS), 3),
    (capital_turn, 5),
    (table_turn(FACTS), 4),
    (arithmetic_turn, 4),
    (everyday.symbol_sum_turn, 3),
    (table_turn(STORIES), 1),
    (count_turn, 3),
    (repeat_turn, 2),
    (everyday.explanation_turn, 2),
    (everyday.haiku_turn, 2),
    (everyday.translation_turn, 2),
    (everyday.say_turn, 2),
    (json_turn, 2),
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


def follow_up_dialogue(rng: random.Random) -> list[Message]:
    """Two questions where the second only makes sense with the first ("And of Italy?")."""
    kind = rng.randrange(3)
    if kind == 0:
        (country, city), (other, other_city) = rng.sample(list(CAPITALS.items()), 2)
        follow = rng.choice(["And of {}?", "What about {}?", "And {}?"]).format(other)
        turns = [
            (f"What is the capital of {country}?", f"The capital of {country} is {city}."),
            (follow, f"The capital of {other} is {other_city}."),
        ]
    elif kind == 1:
        a, b, c = rng.randint(0, 10), rng.randint(0, 10), rng.randint(1, 10)
        turns = [
            (f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}."),
            (rng.choice(["Add {} to that.", "And plus {}?"]).format(c),
             f"{a + b} plus {c} is {a + b + c}."),
        ]  # fmt: skip
    else:
        colour = rng.choice(everyday.COLOURS)
        middle = random_turn(rng)
        turns = [
            (f"My favourite colour is {colour}.", f"{colour.capitalize()} is a lovely colour!"),
            middle,
            ("What is my favourite colour?", f"Your favourite colour is {colour}."),
        ]
    return [
        {"role": role, "content": text}
        for question, answer in turns
        for role, text in (("user", question), ("assistant", answer))
    ]


def styled_dialogue(rng: random.Random) -> list[Message]:
    """A system prompt that changes the style of the reply (brief, pirate, capitals)."""
    style = rng.choice(list(everyday.STYLES))
    kind = rng.randrange(3)
    if kind == 0:
        country, city = rng.choice(list(CAPITALS.items()))
        question, answer, short = (
            f"What is the capital of {country}?",
            f"The capital of {country} is {city}.",
            city + ".",
        )
    elif kind == 1:
        question, answer = arithmetic_turn(rng)
        short = answer.rsplit(" ", 1)[1]
    else:
        question, answer = rng.choice(list(GREETINGS.items()))
        short = answer.split("!")[0] + "!"
    return [
        {"role": "system", "content": rng.choice(everyday.STYLES[style])},
        {"role": "user", "content": question},
        {"role": "assistant", "content": everyday.styled(style, answer, short)},
    ]


def plain_dialogue(rng: random.Random) -> list[Message]:
    """A chat of one to three turns, with a neutral system prompt a third of the time."""
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


def random_dialogue(rng: random.Random) -> Dialogue:
    """One training chat: plain, multi-turn, styled, or with tools (called or not)."""
    kind = rng.random()
    system = rng.choice(SYSTEM_PROMPTS) if rng.random() < 0.2 else None
    if kind < 0.35:
        return tool_dialogue(rng, system)
    if kind < 0.45:
        return no_fit_dialogue(rng, system, random_turn)
    if kind < 0.48:
        return Dialogue(name_dialogue(rng))
    if kind < 0.54:
        return Dialogue(follow_up_dialogue(rng))
    if kind < 0.59:
        return Dialogue(styled_dialogue(rng))
    return Dialogue(plain_dialogue(rng))


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
    """The generated training text: chat dialogues and plain documents."""

    dialogues: list[Dialogue]
    documents: list[str]

    def texts(self) -> Iterator[str]:
        """All message contents, tool lists and calls, and documents, without chat markup
        (for the BPE trainer)."""
        for dialogue in self.dialogues:
            for message in dialogue.messages:
                yield message["role"] + "\n" + (message["content"] or "")
            yield from tool_texts(dialogue)
        yield from self.documents


def generate_corpus(seed: int, n_dialogues: int = 16000, n_documents: int = 800) -> Corpus:
    """Generate the whole training set deterministically from ``seed``."""
    rng = random.Random(seed)
    dialogues = [random_dialogue(rng) for _ in range(n_dialogues)]
    # Every fixed question also appears a few times as a bare single-turn chat.
    fixed = [
        *GREETINGS.items(), *FACTS.items(), *STORIES.items(), *everyday.SAY.items(),
        *((f"Explain {t} in simple terms", text) for t, text in everyday.EXPLANATIONS.items()),
        *((f"Write a haiku about {topic}.", poem) for topic, poem in everyday.HAIKU.items()),
    ]  # fmt: skip
    for question, answer in fixed:
        turn = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        dialogues += [Dialogue(turn)] * 3
    rng.shuffle(dialogues)
    return Corpus(dialogues, [plain_document(rng) for _ in range(n_documents)])


def encode_corpus(tokenizer: PreTrainedTokenizerFast, corpus: Corpus) -> list[Example]:
    """All training examples, dialogues first then documents."""
    examples = [
        encode_dialogue(
            tokenizer, d.messages, MAX_DIALOGUE_TOKENS, d.tools, last_reply_only=d.last_reply_only
        )
        for d in corpus.dialogues
    ]
    examples += [encode_document(tokenizer, document) for document in corpus.documents]
    return examples


VERIFY_PROMPTS: dict[str, str] = {
    "Hello!": "Hello! How can I help you today?",
    "What is the capital of France?": "The capital of France is Paris.",
    "What is the capital of Japan?": "The capital of Japan is Tokyo.",
    "Count from 1 to 10": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
    "What is 2 plus 3?": "2 plus 3 is 5.",
}


def greedy_reply(
    model: GenerationMixin, tokenizer: PreTrainedTokenizerBase, text: str, chat: bool = True
) -> str:
    """Greedy continuation of a user message (chat) or of raw text, special tokens kept."""
    if chat:
        return greedy_chat_reply(model, tokenizer, [{"role": "user", "content": text}])
    return greedy_continuation(model, tokenizer, text, max_new_tokens=80)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PARIS_CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
# (label, messages, tools, expected reply or None when the card only shows it)
CHAT_CHECKS: list[tuple[str, list[Message], list[dict[str, object]] | None, str | None]] = [
    *((prompt, [{"role": "user", "content": prompt}], None, None) for prompt in (
        "Explain quantum computing in simple terms", "Write a haiku about AI.", "What is 2+2?",
        "Say hello in one short sentence.", "How do you say thank you in Spanish?",
        "Answer in JSON: What is the capital of France?", "Send me a smiley.",
    )),
    ("What's the weather in Paris? (tools: get_weather)",
     [{"role": "user", "content": "What's the weather in Paris?"}], [WEATHER_TOOL], PARIS_CALL),
    ("What's the weather in Paris and London? (tools: get_weather)",
     [{"role": "user", "content": "What's the weather in Paris and London?"}], [WEATHER_TOOL],
     None),
    ("the tool's result 18C, sunny (tools: get_weather)",
     [{"role": "user", "content": "What's the weather in Paris?"},
      {"role": "assistant", "content": None, "tool_calls": [{"id": "call_0", "type": "function",
       "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
      {"role": "tool", "tool_call_id": "call_0", "content": "18C, sunny"}],
     [WEATHER_TOOL], None),
    ("What is the capital of France? (tools: get_weather)",
     [{"role": "user", "content": "What is the capital of France?"}], [WEATHER_TOOL],
     "The capital of France is Paris."),
]  # fmt: skip


def verify(output: Path) -> dict[str, str]:
    """Reload the saved checkpoint in float32 and generate a reply to each check prompt."""
    model, tokenizer = load_checkpoint(output)
    replies = {prompt: greedy_reply(model, tokenizer, prompt) for prompt in VERIFY_PROMPTS}
    replies["Once upon a time (raw)"] = greedy_reply(model, tokenizer, "Once upon a time", False)
    for label, messages, tools, _ in CHAT_CHECKS:
        replies[label] = greedy_chat_reply(model, tokenizer, messages, tools=tools)
    for prompt, reply in replies.items():
        logger.info("%r -> %r", prompt, reply)
    return replies


def verification_failures(replies: dict[str, str]) -> list[str]:
    """The check prompts whose reply is not exactly the expected text followed by <|im_end|>."""
    expected = {**VERIFY_PROMPTS, **{label: want for label, _, _, want in CHAT_CHECKS if want}}
    return [p for p, want in expected.items() if replies[p] != want + IM_END]


MODEL_CARD = """\
# tiny-chat

A tiny Llama-style chat model for **tests and demos only**. It knows a handful of templated
answers and tool-calling patterns and nothing else; do not use it for anything that needs a
real language model.

## How it was made

`python scripts/make_tiny_model.py --output models/tiny-chat --steps {steps} --seed {seed}`
generates its own training text, trains a byte-level BPE tokenizer on it and then the model,
from scratch, on CPU. Nothing is downloaded. The text ({n_dialogues:,} ChatML dialogues and
{n_documents} plain documents) covers:

- greetings, capitals of {n_capitals} countries, small arithmetic ("2 plus 3", "2+2"),
  counting, "Repeat after me: ...", a few facts, short stories, short explanations ("Explain
  quantum computing in simple terms"), haiku, translations of a few words, "Say hello in one
  short sentence.", and plain text for raw completions ("Once upon a time");
- JSON answers when a prompt asks for JSON ("Answer in JSON: ...");
- multi-turn chats that use earlier turns ("And of Italy?", "What is my name?") and system
  prompts that change the style ("Be brief.", "You are a pirate.", "Answer in capital
  letters.");
- tools: requests list 1-3 OpenAI tools drawn from {n_families} families (weather, time, search,
  calculator, user/order database lookups, stock prices, translation, email) with varied names,
  descriptions and parameter names and types, so the model copies them from the tool list. A
  question that a listed tool answers gets
  `<tool_call>{{"name": ..., "arguments": {{...}}}}</tool_call>` (one a line: several calls
  for several cities or symbols); after the `tool` turn with the results, a sentence that
  uses them. Other questions get plain answers, tools listed or not.

What it cannot do: anything outside those templates. Unknown questions get a reply in the shape
of a similar known one, arithmetic is right only for small numbers (with a calculator tool it
delegates), tool arguments are copied from the question (no reasoning), and a tool family it
never saw (say, booking flights) is not called.

- Architecture: `LlamaForCausalLM`, {layers} layers, hidden {hidden}, {heads} attention heads
  with {kv_heads} KV heads (GQA), intermediate {intermediate}, max positions {max_pos},
  tied embeddings; {params:,} parameters, stored as float16 safetensors.
- Tokenizer: byte-level BPE, {vocab} tokens. Bytes >= 0x80 are never merged, so every
  non-ASCII character (é, 日本, 😊) spans several tokens and round-trips exactly.
  Special tokens: `<|endoftext|>` = 0 (also pad), `<|im_start|>` = 1, `<|im_end|>` = 2 (eos).
- Chat template: ChatML, in `tokenizer_config.json` (`chat_template`); with
  `add_generation_prompt` it ends with `<|im_start|>assistant\\n`. With `tools`, a first system
  turn lists each function's JSON, one a line; assistant `tool_calls` render as `<tool_call>`
  lines and `tool` messages as a `tool` turn. Generation stops on `<|im_end|>` or
  `<|endoftext|>` (`generation_config.json`).
- Training: {steps} AdamW steps, batch {batch}, sequences up to {max_tokens} tokens,
  {seconds:.0f} s on 2 CPU threads of a shared 2-core machine (other jobs ran beside it), final
  loss {loss:.4f} (mean of the last 25 steps; the loss covers assistant replies and plain text;
  a tool result's answer counts, the echoed call before it does not).
- Size on disk: {size_mb:.1f} MB. `config.json` declares the stored dtype (float16), which
  transformers 5 loads by default; pass `dtype=torch.float32` for CPU inference.

## Greedy replies after training

{replies}
"""


def write_model_card(
    output: Path,
    model: LlamaForCausalLM,
    result: TrainResult,
    seed: int,
    replies: dict[str, str],
    corpus: Corpus,
) -> None:
    """Write README.md describing how the checkpoint was made and what it answers."""
    lines = "\n".join(f"- `{prompt}` -> `{reply!r}`" for prompt, reply in replies.items())
    facts = card_facts(model, result, output)
    card = MODEL_CARD.format(
        **facts,
        seed=seed,
        n_capitals=len(CAPITALS),
        n_families=len({f.key for f in FAMILIES} - {"clock"}),
        n_dialogues=len(corpus.dialogues),
        n_documents=len(corpus.documents),
        max_tokens=MAX_DIALOGUE_TOKENS,
        replies=lines,
    )
    (output / "README.md").write_text(card, encoding="utf-8")


def main(argv: Iterable[str] | None = None) -> int:
    """Build the checkpoint; exit status 1 if a check prompt gets the wrong reply."""
    args = parse_args(__doc__.splitlines()[0], Path("models/tiny-chat"), STEPS, argv)
    if not should_build(args):
        return 0
    corpus = generate_corpus(args.seed)
    tokenizer = train_tokenizer(corpus.texts(), VOCAB_SIZE, TOOLS_CHAT_TEMPLATE)
    examples = encode_corpus(tokenizer, corpus)
    model, result = fit_and_save(tokenizer, examples, args, SIZE, BATCH_SIZE)
    replies = verify(args.output)
    write_model_card(args.output, model, result, args.seed, replies, corpus)
    logger.info("saved %s (%.1f MB)", args.output, directory_size(args.output) / 1e6)
    failures = verification_failures(replies)
    for prompt in failures:
        logger.error("wrong reply to %r: %r", prompt, replies[prompt])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
