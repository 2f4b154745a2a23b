"""Generate text, train a tiny Llama-style chat model on it and save a Hugging Face checkpoint.

The checkpoint exists for tests and demos of the gateway: it answers a fixed set of templated
questions (greetings, capitals, arithmetic, counting, "repeat after me") in ChatML, stops on
``<|im_end|>`` and has a byte-level tokenizer, so that UTF-8 handling can be tested with
characters that span several tokens. Everything (text, tokenizer, weights) is produced here from
a seed; nothing is downloaded.

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

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
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
MAX_SEQ_LEN = 256
IGNORE_INDEX = -100

# ChatML. Content may be a string or a list of OpenAI-style parts (only "text" parts render).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- elif message['content'] is iterable -%}"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

Message = dict[str, str]
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

    dialogues: list[list[Message]]
    documents: list[str]

    def texts(self) -> Iterator[str]:
        """All message contents and documents, without chat markup (for the BPE trainer)."""
        for dialogue in self.dialogues:
            for message in dialogue:
                yield message["role"] + "\n" + message["content"]
        yield from self.documents


def generate_corpus(seed: int, n_dialogues: int = 6000, n_documents: int = 600) -> Corpus:
    """Generate the whole training set deterministically from ``seed``."""
    rng = random.Random(seed)
    dialogues = [random_dialogue(rng) for _ in range(n_dialogues)]
    # Every fixed question also appears a few times as a bare single-turn chat.
    for question, answer in [*GREETINGS.items(), *FACTS.items(), *STORIES.items()]:
        turn = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        dialogues += [turn] * 3
    rng.shuffle(dialogues)
    return Corpus(dialogues, [plain_document(rng) for _ in range(n_documents)])


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
    return tokenizer


def render_chat(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], add_generation_prompt: bool = False
) -> str:
    """The chat as text, through the tokenizer's own chat template."""
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):
        raise TypeError(f"chat template rendered {type(text).__name__}, expected str")
    return text


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and labels (IGNORE_INDEX where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]


def encode_dialogue(tokenizer: PreTrainedTokenizerFast, messages: list[Message]) -> Example:
    """Tokenize a chat exactly as at inference; take the loss on assistant replies only.

    The reply spans (content plus <|im_end|>) are found by rendering the template on growing
    prefixes of the chat, then mapped to tokens through the offsets.
    """
    text = render_chat(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            start = len(render_chat(tokenizer, messages[:i], add_generation_prompt=True))
            end = len(render_chat(tokenizer, messages[: i + 1])) - 1  # drop the final "\n"
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
    examples = [encode_dialogue(tokenizer, dialogue) for dialogue in corpus.dialogues]
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
    """Stack examples into (input_ids, attention_mask, labels), padded with id 0."""
    width = max(len(e.input_ids) for e in group)
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


def train(model: LlamaForCausalLM, examples: list[Example], steps: int, seed: int) -> TrainResult:
    """Plain AdamW loop over padded batches; logs the mean loss of the last 25 steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    stream = batches(examples, batch_size=32, rng=random.Random(seed))
    model.train()
    started, recent = time.monotonic(), list[float]()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, peak=2e-3, warmup=min(50, steps // 10 + 1))
        ids, mask, labels = next(stream)
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
    return TrainResult(steps, time.monotonic() - started, sum(recent) / len(recent))


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


def greedy_reply(
    model: GenerationMixin, tokenizer: PreTrainedTokenizerBase, text: str, chat: bool = True
) -> str:
    """Greedy continuation of a user message (chat) or of raw text, special tokens kept."""
    if chat:
        text = render_chat(tokenizer, [{"role": "user", "content": text}], True)
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=80, do_sample=False)
    new_tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
    return str(tokenizer.decode(new_tokens, skip_special_tokens=False))


def verify(output: Path) -> dict[str, str]:
    """Reload the saved checkpoint in float32 and generate a reply to each check prompt."""
    tokenizer = AutoTokenizer.from_pretrained(output)
    model = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float32)
    replies = {prompt: greedy_reply(model, tokenizer, prompt) for prompt in VERIFY_PROMPTS}
    replies["Once upon a time (raw)"] = greedy_reply(model, tokenizer, "Once upon a time", False)
    for prompt, reply in replies.items():
        logger.info("%r -> %r", prompt, reply)
    return replies


def verification_failures(replies: dict[str, str]) -> list[str]:
    """The check prompts whose reply is not exactly the expected text followed by <|im_end|>."""
    return [p for p, want in VERIFY_PROMPTS.items() if replies[p] != want + IM_END]


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
short stories, plus plain text for raw completions), trains a byte-level BPE tokenizer on it and
then the model, from scratch, on CPU. Nothing is downloaded.

- Architecture: `LlamaForCausalLM`, {layers} layers, hidden {hidden}, {heads} attention heads
  with {kv_heads} KV heads (GQA), intermediate {intermediate}, max positions {max_pos},
  tied embeddings; {params:,} parameters, stored as float16 safetensors.
- Tokenizer: byte-level BPE, {vocab} tokens. Bytes >= 0x80 are never merged, so every
  non-ASCII character (é, 日本, 😊) spans several tokens and round-trips exactly.
  Special tokens: `<|endoftext|>` = 0 (also pad), `<|im_start|>` = 1, `<|im_end|>` = 2 (eos).
- Chat template: ChatML, in `tokenizer_config.json` (`chat_template`); with
  `add_generation_prompt` it ends with `<|im_start|>assistant\\n`. Generation stops on
  `<|im_end|>` or `<|endoftext|>` (`generation_config.json`).
- Training: {steps} AdamW steps, batch 32, {seconds:.0f} s on 2 CPU threads, final loss
  {loss:.4f} (mean of the last 25 steps; the loss covers assistant replies and plain text).
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
    result = train(model, examples, args.steps, args.seed)
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
