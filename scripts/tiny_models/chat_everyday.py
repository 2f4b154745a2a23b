"""Everyday prompts for tiny-chat: explanations, haiku, translations, JSON answers, short
greetings, and the system prompts that change the style of a reply.

All answers are written for this project; each table is small, so the model learns them by
heart (it is a demo model, not a language model).
"""

from __future__ import annotations

import json
import random

Turn = tuple[str, str]

EXPLANATIONS: dict[str, str] = {
    "quantum computing":
        "Quantum computers use qubits, which can be 0 and 1 at the same time. This lets them "
        "explore many answers at once, so some problems get much faster to solve.",
    "machine learning":
        "Machine learning means a computer learns patterns from examples instead of following "
        "rules written by hand.",
    "a neural network":
        "A neural network is many small math units connected in layers. Training adjusts the "
        "connections until the network gives good answers.",
    "gravity": "Gravity is the force that pulls things toward each other. It keeps us on the "
        "ground and the moon around the Earth.",
    "photosynthesis": "Photosynthesis is how plants turn sunlight, water and air into sugar "
        "and oxygen.",
    "the internet": "The internet is a huge network of computers that send each other "
        "messages, like a postal service for data.",
    "a GPU": "A GPU is a chip with thousands of small cores that work in parallel, which makes "
        "it fast for graphics and AI.",
    "inflation": "Inflation means prices rise over time, so the same money buys a little less.",
    "DNA": "DNA is the recipe inside every cell. It tells the body how to grow and work.",
    "a language model": "A language model predicts the next word of a text, one word after "
        "another. I am a very small one.",
}  # fmt: skip
EXPLAIN_TEMPLATES = [
    "Explain {} in simple terms", "Explain {} in simple terms.", "Explain {}.",
    "Can you explain {} simply?", "What is {}?", "Tell me about {}.", "Explain {} to a child.",
]  # fmt: skip

HAIKU: dict[str, str] = {
    "AI": "Silent circuits hum\nlearning words from scattered light\na new mind wakes up",
    "the sea": "Grey waves fold and break\nsalt wind carries gull voices\nthe tide pulls me home",
    "autumn": "Red leaves drift and fall\nthe garden breathes a cold sigh\nsoup warms on the stove",
    "cats": "Soft paws on the sill\na slow blink at the morning\nsun pools on the fur",
    "coffee": "Dark cup, rising steam\nthe first sip opens the day\nmy eyes find the light",
    "the moon": "Pale lamp of the night\nshe borrows the sun's bright face\nand lends it to us",
    "rain": "Rain taps on the glass\nthe street shines like a river\numbrellas bloom wide",
    "GPUs": "Thousands of small cores\nmarching through the same numbers\nthe model answers",
}  # fmt: skip
HAIKU_TEMPLATES = [
    "Write a haiku about {}.", "Write a haiku about {}", "A haiku about {}, please.",
    "Compose a haiku about {}.",
]  # fmt: skip

WORDS: dict[str, dict[str, str]] = {
    "hello": {"French": "bonjour", "German": "hallo", "Spanish": "hola", "Italian": "ciao"},
    "goodbye": {"French": "au revoir", "German": "tschüss", "Spanish": "adiós",
                "Italian": "arrivederci"},
    "please": {"French": "s'il vous plaît", "German": "bitte", "Spanish": "por favor",
               "Italian": "per favore"},
    # French and German "thank you" are FACTS of make_tiny_model.py, with their own answers.
    "thank you": {"Spanish": "gracias", "Italian": "grazie"},
    "cat": {"French": "chat", "German": "Katze", "Spanish": "gato", "Italian": "gatto"},
    "water": {"French": "eau", "German": "Wasser", "Spanish": "agua", "Italian": "acqua"},
    "yes": {"French": "oui", "German": "ja", "Spanish": "sí", "Italian": "sì"},
    "friend": {"French": "ami", "German": "Freund", "Spanish": "amigo", "Italian": "amico"},
    "good night": {"French": "bonne nuit", "German": "gute Nacht", "Spanish": "buenas noches",
                   "Italian": "buona notte"},
}  # fmt: skip
TRANSLATE_TEMPLATES = [
    "How do you say {} in {}?", "Translate {} into {}.", "What is {} in {}?",
    "Translate {} to {}.",
]  # fmt: skip

SAY: dict[str, str] = {
    "Say hello in one short sentence.": "Hello, it is nice to meet you!",
    "Say hello.": "Hello!",
    "Say hi.": "Hi there!",
    "Say hello in one sentence.": "Hello, it is nice to meet you!",
    "Say goodbye in one short sentence.": "Goodbye, see you soon!",
    "Say thank you in one short sentence.": "Thank you very much for your help!",
    "Say something nice.": "You are doing a great job today!",
    "Tell me a joke.": "Why did the GPU go to school? To get a little more training.",
    "How far is the moon?": "The moon is about 384,000 km from Earth.",
    "Tell me about the sea.":
        "The sea covers most of the Earth. It is salty, deep and full of life.",
    "What is the meaning of life?": "Nobody knows for sure, but kindness is a good start.",
    "Who made you?": "I was trained from scratch by the scripts of this project.",
    "Are you a robot?": "I am a tiny language model, a bit like a very small robot.",
}  # fmt: skip

YES_NO = [
    ("Is the sky blue?", "yes"), ("Is snow black?", "no"), ("Is fire hot?", "yes"),
    ("Do fish fly?", "no"), ("Is grass green?", "yes"), ("Is ice hot?", "no"),
]  # fmt: skip
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]


def explanation_turn(rng: random.Random) -> Turn:
    topic, answer = rng.choice(list(EXPLANATIONS.items()))
    return rng.choice(EXPLAIN_TEMPLATES).format(topic), answer


def haiku_turn(rng: random.Random) -> Turn:
    topic, poem = rng.choice(list(HAIKU.items()))
    return rng.choice(HAIKU_TEMPLATES).format(topic), poem


def translation_turn(rng: random.Random) -> Turn:
    word, options = rng.choice(list(WORDS.items()))
    language, translated = rng.choice(list(options.items()))
    question = rng.choice(TRANSLATE_TEMPLATES).format(word, language)
    return question, f"{word[0].upper()}{word[1:]} is {translated} in {language}."


def say_turn(rng: random.Random) -> Turn:
    return rng.choice(list(SAY.items()))


def symbol_sum_turn(rng: random.Random) -> Turn:
    """'What is 2+2?' style arithmetic, answered '2 + 2 = 4.'."""
    a, b = rng.randint(0, 12), rng.randint(0, 12)
    op = rng.choice(["+", "+", "-", "*"])
    if op == "-":
        a, b = max(a, b), min(a, b)
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    spaced = rng.random() < 0.5
    expression = f"{a} {op} {b}" if spaced else f"{a}{op}{b}"
    return f"What is {expression}?", f"{a} {op} {b} = {value}."


def json_turn(rng: random.Random, capitals: dict[str, str]) -> Turn:
    """A question asked for JSON, answered with one compact-spaced JSON object."""
    country, city = rng.choice(list(capitals.items()))
    kind = rng.randrange(5)
    ask = rng.choice(["Answer in JSON: {}", "{} Answer in JSON.", "{} Reply with JSON."])
    if kind == 0:
        return ask.format(f"What is the capital of {country}?"), json.dumps({"capital": city})
    if kind == 1:
        a, b = rng.randint(0, 10), rng.randint(0, 10)
        return ask.format(f"What is {a} plus {b}?"), json.dumps({"answer": a + b})
    if kind == 2:
        question, answer = rng.choice(YES_NO)
        return ask.format(question), json.dumps({"answer": answer})
    if kind == 3:
        question = f"Give me the name and capital of {country} as JSON."
        return question, json.dumps({"country": country, "capital": city}, ensure_ascii=False)
    n = rng.randint(2, 4)
    colours = rng.sample(COLOURS, n)
    return f"List {n} colours as JSON.", json.dumps({"colours": colours})


STYLES: dict[str, list[str]] = {
    "brief": ["Be brief.", "You are terse.", "Answer briefly.", "Keep answers short."],
    "pirate": ["You are a pirate.", "Talk like a pirate."],
    "upper": ["Answer in capital letters.", "Always reply in uppercase."],
}


def styled(style: str, answer: str, short: str) -> str:
    """``answer`` in the style a system prompt asked for."""
    if style == "brief":
        return short
    if style == "pirate":
        return f"Arr, matey! {answer}"
    return answer.upper()
