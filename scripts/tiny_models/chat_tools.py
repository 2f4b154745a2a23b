"""Tool-use dialogues for tiny-chat: OpenAI ``tools`` with varied names and schemas.

Every tool belongs to a family (weather, time, search, calculator, user, order, stock,
translate, email). A tool's name, description and parameter names are drawn from the family's
alternatives, so the model has to copy them from the tool list in the prompt instead of
learning one spelling. A question of a family whose tool is listed is answered with calls;
the next turn, after the tool's result, answers in a sentence that uses the result. Other
questions get plain answers, tools or not.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tiny_models.tokenizer import Message, Tools


@dataclass(frozen=True)
class Dialogue:
    """One training chat: its messages, the tools its prompt lists, and where the loss goes."""

    messages: list[Message]
    tools: Tools | None = None
    last_reply_only: bool = False


@dataclass(frozen=True)
class Call:
    """One call: its argument values (in parameter order), the tool's result, a sentence."""

    values: tuple[Any, ...]
    result: str
    answer: str


@dataclass(frozen=True)
class Ask:
    """A question that the family's tool answers, with one call per thing asked about."""

    question: str
    calls: list[Call]


@dataclass(frozen=True)
class Param:
    """A parameter: alternative property names, JSON type, and a description."""

    names: tuple[str, ...]
    kind: str
    description: str


@dataclass(frozen=True)
class Family:
    """Tools of one kind and the questions they answer (``ask(rng, n)``: n calls)."""

    key: str
    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    params: tuple[Param, ...]
    ask: Callable[[random.Random, int], Ask]
    max_calls: int = 1
    no_tool: str = ""  # the plain answer to its question when no listed tool fits


CITIES = [
    "Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "New York", "Sydney", "Cairo",
    "Toronto", "Lima", "Oslo", "Seoul", "Mumbai", "Chicago", "Vienna", "Dublin", "Lisbon",
    "Nairobi", "Bangkok", "Zürich", "São Paulo", "Boston", "Denver", "Prague", "Athens",
    "Amsterdam", "Stockholm", "Warsaw", "Beijing", "Hanoi", "Mexico City", "Buenos Aires",
]  # fmt: skip
CONDITIONS = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy", "clear", "stormy"]
TOPICS = [
    "the history of Rome", "Triton Inference Server", "the best pizza in Naples",
    "how to bake bread", "electric cars", "the tallest mountain", "black holes",
    "the Olympic Games", "healthy breakfast ideas", "TensorRT-LLM", "jazz music",
    "the price of coffee", "how bees make honey", "cheap flights to Tokyo", "Python tutorials",
    "the life of Marie Curie", "solar panels", "the rules of chess", "GPU benchmarks",
    "news about robots", "the weather in spring", "vegan recipes", "the moon landing",
]  # fmt: skip
NAMES = ["Alice", "Bob", "Chloé", "David", "Emma", "Jürgen", "Maria", "Noah", "Yuki", "Zoë"]
SYMBOLS = ["AAPL", "NVDA", "MSFT", "GOOG", "AMZN", "TSLA", "IBM", "INTC", "AMD", "META"]
STATUSES = ["shipped", "delivered", "processing", "cancelled", "out for delivery"]
TRANSLATIONS: dict[str, dict[str, str]] = {
    "good morning": {"French": "bonjour", "German": "Guten Morgen", "Spanish": "buenos días"},
    "thank you": {"French": "merci", "German": "danke", "Spanish": "gracias"},
    "good night": {"French": "bonne nuit", "German": "gute Nacht", "Spanish": "buenas noches"},
    "where is the station": {
        "French": "où est la gare", "German": "wo ist der Bahnhof",
        "Spanish": "dónde está la estación",
    },
    "I love cheese": {
        "French": "j'adore le fromage", "German": "ich liebe Käse",
        "Spanish": "me encanta el queso",
    },
    "see you soon": {"French": "à bientôt", "German": "bis bald", "Spanish": "hasta pronto"},
    "the cat is sleeping": {
        "French": "le chat dort", "German": "die Katze schläft", "Spanish": "el gato duerme",
    },
}  # fmt: skip
SUBJECTS = ["the meeting", "lunch", "the report", "the trip", "the party", "the budget"]
SENTENCE_WORDS = [
    "open", "daily", "modern", "famous", "small", "local", "free", "new", "popular", "old",
]  # fmt: skip


def _listing(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _weather(rng: random.Random, n: int) -> Ask:
    cities = rng.sample(CITIES, n)
    one = [
        "What's the weather in {}?", "What is the weather like in {}?", "Weather in {}?",
        "How is the weather in {} today?", "Is it raining in {}?", "How warm is it in {}?",
        "Tell me the weather in {}.", "What's the weather in {} right now?",
    ]  # fmt: skip
    many = ["What's the weather in {}?", "How is the weather in {}?", "Weather in {}?"]
    question = rng.choice(one if n == 1 else many).format(_listing(cities))
    calls = []
    for city in cities:
        degrees, sky = rng.randint(-5, 35), rng.choice(CONDITIONS)
        result = rng.choice(
            [
                json.dumps({"temperature": degrees, "condition": sky}, ensure_ascii=False),
                json.dumps({"city": city, "temp_c": degrees, "sky": sky}, ensure_ascii=False),
                f"{degrees}C, {sky}",
            ]
        )
        calls.append(Call((city,), result, f"it is {degrees}°C and {sky} in {city}"))
    return Ask(question, calls)


def _time(rng: random.Random, n: int) -> Ask:
    cities = rng.sample(CITIES, n)
    template = rng.choice(["What time is it in {}?", "What's the time in {}?", "Time in {}?"])
    calls = []
    for city in cities:
        clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        result = rng.choice([clock, json.dumps({"time": clock})])
        calls.append(Call((city,), result, f"it is {clock} in {city}"))
    return Ask(template.format(_listing(cities)), calls)


def _clock(rng: random.Random, n: int) -> Ask:
    question = rng.choice(["What time is it?", "What's the time?", "Tell me the current time."])
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    result = rng.choice([clock, json.dumps({"time": clock})])
    return Ask(question, [Call((), result, f"it is {clock}")])


def _search(rng: random.Random, n: int) -> Ask:
    topic = rng.choice(TOPICS)
    template = rng.choice(
        [
            "Search the web for {}.", "Look up {} online.", "Find information about {}.",
            "Search for {}.", "Can you search for {}?", "Google {}.",
        ]
    )  # fmt: skip
    snippet = f"{topic[0].upper()}{topic[1:]} has a {rng.choice(SENTENCE_WORDS)} page on Wiki."
    result = rng.choice([json.dumps({"results": [snippet]}), snippet])
    return Ask(template.format(topic), [Call((topic,), result, f"I found this: {snippet}")])


def _calculator(rng: random.Random, n: int) -> Ask:
    a, b, c = rng.randint(11, 999), rng.randint(2, 99), rng.randint(2, 9)
    expression, value = rng.choice(
        [
            (f"{a} * {b}", a * b), (f"{a} + {b}", a + b), (f"{a} - {b}", a - b),
            (f"({a} + {b}) * {c}", (a + b) * c), (f"{a * b} / {b}", a),
        ]
    )  # fmt: skip
    template = rng.choice(
        ["Calculate {}.", "What is {}?", "Compute {}.", "How much is {}?", "What's {}?"]
    )
    result = rng.choice([str(value), json.dumps({"result": value})])
    return Ask(
        template.format(expression), [Call((expression,), result, f"{expression} = {value}")]
    )


def _user(rng: random.Random, n: int) -> Ask:
    ids = rng.sample(range(1, 9999), n)
    one = ["Look up user {}.", "Who is user {}?", "Find the customer with id {}.",
           "Get the details of user {}."]  # fmt: skip
    many = ["Look up users {}.", "Who are users {}?"]
    question = rng.choice(one if n == 1 else many).format(_listing([str(i) for i in ids]))
    calls = []
    for user_id in ids:
        name = rng.choice(NAMES)
        email = f"{name.lower()}@example.com"
        result = json.dumps({"id": user_id, "name": name, "email": email}, ensure_ascii=False)
        calls.append(Call((user_id,), result, f"user {user_id} is {name} ({email})"))
    return Ask(question, calls)


def _order(rng: random.Random, n: int) -> Ask:
    order = rng.choice(["A", "B", "ORD-", "X"]) + str(rng.randint(100, 99999))
    template = rng.choice(
        ["Where is my order {}?", "What is the status of order {}?", "Track order {}."]
    )
    status = rng.choice(STATUSES)
    result = rng.choice([json.dumps({"status": status}), status])
    return Ask(template.format(order), [Call((order,), result, f"order {order} is {status}")])


def _stock(rng: random.Random, n: int) -> Ask:
    symbols = rng.sample(SYMBOLS, n)
    one = ["What is the stock price of {}?", "How much is {} trading at?", "Price of {} stock?"]
    many = ["What are the stock prices of {}?", "How much are {} trading at?"]
    question = rng.choice(one if n == 1 else many).format(_listing(symbols))
    calls = []
    for symbol in symbols:
        price = f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}"
        result = rng.choice([json.dumps({"symbol": symbol, "price": float(price)}), price])
        calls.append(Call((symbol,), result, f"{symbol} is trading at {float(price)}"))
    return Ask(question, calls)


def _translate(rng: random.Random, n: int) -> Ask:
    text, options = rng.choice(list(TRANSLATIONS.items()))
    language, translated = rng.choice(list(options.items()))
    template = rng.choice(
        ["Translate {} into {}.", "Translate {} to {}.", "How do you say {} in {}?"]
    )
    answer = f"{text[0].upper()}{text[1:]} in {language} is {translated}"
    return Ask(template.format(text, language), [Call((text, language), translated, answer)])


def _email(rng: random.Random, n: int) -> Ask:
    name, subject = rng.choice(NAMES), rng.choice(SUBJECTS)
    address = f"{name.lower()}@example.com"
    template = rng.choice(
        ["Send an email to {} about {}.", "Email {} about {}.", "Write to {} about {}."]
    )
    result = rng.choice(["sent", json.dumps({"status": "sent"})])
    answer = f"I sent the email about {subject} to {address}"
    return Ask(template.format(address, subject), [Call((address, subject), result, answer)])


def _string(*names: str, description: str = "") -> Param:
    return Param(names, "string", description)


FAMILIES: list[Family] = [
    Family(
        "weather",
        (
            "get_weather",
            "get_current_weather",
            "weather",
            "fetch_weather",
            "lookup_weather",
            "current_weather",
            "weather_report",
        ),
        (
            "Current weather in a city",
            "Get the current weather for a location",
            "Weather report for a city",
        ),
        (_string("city", "location", "city_name", "place", description="The city"),),
        _weather,
        max_calls=3,
        no_tool="I cannot check the weather from here, sorry.",
    ),
    Family(
        "time",
        ("get_time", "get_current_time", "current_time", "world_clock", "time_in"),
        ("Current local time in a city", "Get the time in a place"),
        (_string("city", "timezone", "location", description="City or time zone"),),
        _time,
        max_calls=2,
        no_tool="I have no clock, so I cannot tell the time.",
    ),
    Family(
        "clock",
        ("get_time", "get_current_time", "now", "current_time", "clock"),
        ("Current time", "The time now"),
        (),
        _clock,
        no_tool="I have no clock, so I cannot tell the time.",
    ),
    Family(
        "search",
        ("web_search", "search", "search_web", "internet_search", "find_online"),
        ("Search the web", "Search the internet and return the top result"),
        (_string("query", "q", "search_query", "terms", description="What to search for"),),
        _search,
        no_tool="I cannot search the web, sorry.",
    ),
    Family(
        "calculator",
        ("calculator", "calculate", "eval_math", "compute", "evaluate_expression"),
        ("Evaluate a math expression", "A simple calculator"),
        (_string("expression", "expr", "formula", "input", description="Math expression"),),
        _calculator,
    ),
    Family(
        "user",
        ("lookup_user", "get_user", "find_user", "get_customer", "query_users"),
        ("Look up a user in the database", "Fetch a customer record by id"),
        (Param(("user_id", "id", "customer_id"), "integer", "The user's id"),),
        _user,
        max_calls=2,
        no_tool="I cannot look that up without access to the database.",
    ),
    Family(
        "order",
        ("get_order", "get_order_status", "lookup_order", "order_status", "track_order"),
        ("Status of an order", "Look up an order in the shop database"),
        (_string("order_id", "order_number", "id", description="The order number"),),
        _order,
        no_tool="I cannot look that up without access to the database.",
    ),
    Family(
        "stock",
        ("get_stock_price", "stock_price", "get_quote", "lookup_ticker"),
        ("Latest stock price", "Get a stock quote"),
        (_string("symbol", "ticker", description="Ticker symbol"),),
        _stock,
        max_calls=2,
        no_tool="I cannot look up stock prices, sorry.",
    ),
    Family(
        "translate",
        ("translate", "translate_text", "translator"),
        ("Translate text into another language",),
        (
            _string("text", "source_text", description="Text to translate"),
            _string("target_language", "language", "to", description="Target language"),
        ),
        _translate,
    ),
    Family(
        "email",
        ("send_email", "email", "send_mail"),
        ("Send an email",),
        (
            _string("to", "recipient", "address", description="Email address"),
            _string("subject", "topic", description="Subject line"),
        ),
        _email,
        no_tool="I cannot send emails, sorry.",
    ),
]
FAMILY = {family.key: family for family in FAMILIES}


@dataclass(frozen=True)
class Tool:
    """One drawn tool: its OpenAI definition and how its parameters are spelt."""

    family: Family
    name: str
    param_names: tuple[str, ...]
    integer_ids: bool  # an integer parameter declared as a string in this schema (or not)
    definition: dict[str, Any]

    def arguments(self, call: Call) -> dict[str, Any]:
        """The call's arguments as this tool's schema spells and types them."""
        values = [
            str(v) if self._as_string(p) else v
            for p, v in zip(self.family.params, call.values, strict=True)
        ]
        return dict(zip(self.param_names, values, strict=True))

    def _as_string(self, param: Param) -> bool:
        return param.kind == "integer" and not self.integer_ids


def draw_tool(family: Family, rng: random.Random) -> Tool:
    """A tool of ``family`` with a drawn name, description and parameter spelling."""
    name = rng.choice(family.names)
    names = tuple(rng.choice(param.names) for param in family.params)
    integer_ids = rng.random() < 0.5
    properties: dict[str, Any] = {}
    for param, prop in zip(family.params, names, strict=True):
        kind = param.kind if integer_ids else "string"
        spec: dict[str, Any] = {"type": kind}
        if rng.random() < 0.3:
            spec["description"] = param.description
        if kind == "string" and rng.random() < 0.2:
            spec["maxLength"] = rng.choice([24, 32, 64])
        properties[prop] = spec
    if family.key == "weather" and rng.random() < 0.25:
        properties["unit"] = {"type": "string", "enum": ["celsius", "fahrenheit"]}
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if names and rng.random() < 0.8:
        parameters["required"] = list(names)
    if rng.random() < 0.3:
        parameters["additionalProperties"] = False
    function: dict[str, Any] = {"name": name}
    if rng.random() < 0.6:
        function["description"] = rng.choice(family.descriptions)
    function["parameters"] = parameters
    definition = {"type": "function", "function": function}
    return Tool(family, name, names, integer_ids, definition)


def draw_tools(rng: random.Random, wanted: list[Family], others: int) -> list[Tool]:
    """Tools for ``wanted`` plus ``others`` of further families, in random order, names unique."""
    taken = {family.key for family in wanted} | _clashes(wanted)
    spare = [f for f in FAMILIES if f.key not in taken]
    families = [*wanted, *rng.sample(spare, min(others, len(spare)))]
    tools: list[Tool] = []
    for family in families:
        tool = draw_tool(family, rng)
        while tool.name in {t.name for t in tools}:
            tool = draw_tool(family, rng)
        tools.append(tool)
    rng.shuffle(tools)
    return tools


def _clashes(families: list[Family]) -> set[str]:
    """Families that answer the same questions as one of ``families`` (time and clock)."""
    keys = {family.key for family in families}
    return {"time", "clock"} if keys & {"time", "clock"} else set()


def call_message(tools: list[Tool], calls: list[tuple[Tool, Call]], echoed: bool) -> Message:
    """The assistant's calls, as the model writes them or as a client sends them back
    (OpenAI's ``arguments`` string, compact JSON as this API returns it)."""
    entries = []
    for index, (tool, call) in enumerate(calls):
        arguments: Any = tool.arguments(call)
        if echoed:
            arguments = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
        function = {"name": tool.name, "arguments": arguments}
        entries.append({"id": f"call_{index}", "type": "function", "function": function})
    return {"role": "assistant", "content": None if echoed else "", "tool_calls": entries}


def _sentence(parts: list[str]) -> str:
    text = _listing(parts)
    return text[0].upper() + text[1:] + "."


def tool_dialogue(rng: random.Random, system: str | None) -> Dialogue:
    """A question that a listed tool answers: the calls, and half the time the results and
    the answer that uses them (then the calls are history, written as a client echoes them)."""
    if rng.random() < 0.12:
        weather, time = FAMILY["weather"], FAMILY["time"]
        tools = draw_tools(rng, [weather, time], rng.choice([0, 0, 1]))
        first, second = weather.ask(rng, 1), time.ask(rng, 1)
        question = (
            f"{first.question.rstrip('?.')} and what time is it in {second.calls[0].values[0]}?"
        )
        by_family = {tool.family.key: tool for tool in tools}
        calls = [(by_family["weather"], first.calls[0]), (by_family["time"], second.calls[0])]
    else:
        family = rng.choice([f for f in FAMILIES for _ in range(_weight(f))])
        n = rng.choices([1, 2, 3], weights=[6, 3, 1])[0] if family.max_calls > 1 else 1
        ask = family.ask(rng, min(n, family.max_calls))
        tools = draw_tools(rng, [family], rng.choices([0, 1, 2], weights=[4, 3, 1])[0])
        (tool,) = [t for t in tools if t.family is family]
        question, calls = ask.question, [(tool, call) for call in ask.calls]
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    definitions = [tool.definition for tool in tools]
    if rng.random() < 0.5:
        messages.append(call_message(tools, calls, echoed=False))
        return Dialogue(messages, definitions)
    messages.append(call_message(tools, calls, echoed=True))
    for index, (_, call) in enumerate(calls):
        messages.append({"role": "tool", "tool_call_id": f"call_{index}", "content": call.result})
    answer = _sentence([call.answer for _, call in calls])
    messages.append({"role": "assistant", "content": answer})
    return Dialogue(messages, definitions, last_reply_only=True)


def _weight(family: Family) -> int:
    """How often a family's questions come up: weather (the demo's example) most."""
    return {"weather": 4, "search": 2, "calculator": 2, "clock": 1}.get(family.key, 2)


def no_fit_dialogue(
    rng: random.Random, system: str | None, plain: Callable[[random.Random], tuple[str, str]]
) -> Dialogue:
    """Tools are listed but none fits: a plain question gets its plain answer, and a tool
    question whose tool is missing gets a plain refusal."""
    if rng.random() < 0.3:
        family = rng.choice([f for f in FAMILIES if f.no_tool])
        question, answer = family.ask(rng, 1).question, family.no_tool
        tools = draw_tools(rng, [], rng.choice([0, 1, 2]))
        tools = [t for t in tools if t.family.key not in {family.key, *_clashes([family])}]
    else:
        question, answer = plain(rng)
        tools = draw_tools(rng, [], rng.choice([1, 1, 2, 3]))
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return Dialogue(messages, [tool.definition for tool in tools] or None)


def tool_texts(dialogue: Dialogue) -> list[str]:
    """The JSON text a dialogue's tools and calls add to the prompt (for the BPE trainer)."""
    texts = [json.dumps(t["function"], ensure_ascii=False) for t in dialogue.tools or []]
    for message in dialogue.messages:
        for call in message.get("tool_calls") or []:
            arguments = call["function"]["arguments"]
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            name = json.dumps(call["function"]["name"])
            texts.append(f'<tool_call>{{"name": {name}, "arguments": {arguments}}}</tool_call>')
    return texts
