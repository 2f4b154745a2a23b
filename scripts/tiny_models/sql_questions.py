"""Questions over a generated schema and the SQLite query that answers each one.

One template per kind of question (all rows, some columns, a filter, counts, an aggregate, top
k, group-by count, a join along a foreign key), each with a few phrasings. The prompt carries the
schema's ``CREATE TABLE`` statements and the question; the answer is the SQL alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from tiny_models.sql_schemas import ColumnKind, Schema, Table, Value, random_schema
from tiny_models.tokenizer import Message

SYSTEM_PROMPT = "Translate the question into one SQLite query. Answer with the SQL only."


@dataclass(frozen=True)
class Pair:
    """A question over ``schema`` and its SQL answer; ``kind`` names the template."""

    schema: Schema
    question: str
    sql: str
    kind: str


Template = Callable[[Table, Schema, random.Random], tuple[str, str] | None]


def literal(value: Value) -> str:
    """The value as SQL: text quoted, numbers bare."""
    return f"'{value}'" if isinstance(value, str) else str(value)


def all_rows(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str]:
    phrasings = ["Show all {t}.", "List all {t}.", "Get every {s}.", "Show all rows of {t}."]
    question = rng.choice(phrasings)
    return question.format(t=table.name, s=table.singular), f"SELECT * FROM {table.name};"


def some_columns(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str]:
    columns = rng.sample(table.data_columns, k=min(len(table.data_columns), rng.choice([1, 2])))
    words = " and ".join(c.words for c in columns)
    question = rng.choice(["List the {w} of all {t}.", "Show the {w} of every {s}."])
    names = ", ".join(c.name for c in columns)
    return question.format(w=words, t=table.name, s=table.singular), (
        f"SELECT {names} FROM {table.name};"
    )


def condition(column: ColumnKind, rng: random.Random) -> tuple[str, str]:
    """(words, SQL) of a condition on one column: equality for text, a threshold for numbers."""
    if not column.numeric:
        value = column.value(rng)
        words = rng.choice(["whose {c} is {v}", "with {c} {v}", "where the {c} is {v}"])
        return words.format(c=column.words, v=value), f"{column.name} = {literal(value)}"
    threshold = rng.randint(column.low, column.high)
    if rng.random() < 0.5:
        words, op = rng.choice(["with {c} greater than {v}", "with {c} above {v}"]), ">"
    else:
        words, op = rng.choice(["with {c} less than {v}", "with {c} below {v}"]), "<"
    return words.format(c=column.words, v=threshold), f"{column.name} {op} {threshold}"


def filtered(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str]:
    words, where = condition(rng.choice(table.data_columns), rng)
    question = rng.choice(["Show the {t} {w}.", "Find the {t} {w}.", "List {t} {w}."])
    return question.format(t=table.name, w=words), f"SELECT * FROM {table.name} WHERE {where};"


def count(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str]:
    phrasings = ["How many {t} are there?", "Count the {t}.", "What is the number of {t}?"]
    question = rng.choice(phrasings)
    return question.format(t=table.name), f"SELECT COUNT(*) FROM {table.name};"


def count_where(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str]:
    words, where = condition(rng.choice(table.data_columns), rng)
    question = rng.choice(["How many {t} are there {w}?", "Count the {t} {w}."])
    return question.format(t=table.name, w=words), (
        f"SELECT COUNT(*) FROM {table.name} WHERE {where};"
    )


AGGREGATES = {
    "AVG": ["What is the average {c} of the {t}?", "Give the mean {c} of all {t}."],
    "SUM": ["What is the total {c} of all {t}?", "Sum the {c} of the {t}."],
    "MAX": ["What is the highest {c} among the {t}?", "What is the maximum {c} of the {t}?"],
    "MIN": ["What is the lowest {c} among the {t}?", "What is the minimum {c} of the {t}?"],
}


def aggregate(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str] | None:
    numeric = [c for c in table.data_columns if c.numeric]
    if not numeric:
        return None
    column, function = rng.choice(numeric), rng.choice(list(AGGREGATES))
    question = rng.choice(AGGREGATES[function]).format(c=column.words, t=table.name)
    return question, f"SELECT {function}({column.name}) FROM {table.name};"


def top(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str] | None:
    numeric = [c for c in table.data_columns if c.numeric]
    if not numeric:
        return None
    column, k = rng.choice(numeric), rng.randint(1, 10)
    highest = rng.random() < 0.5
    word = rng.choice(["highest", "largest"] if highest else ["lowest", "smallest"])
    phrasings = ["Show the {k} {t} with the {w} {c}.", "List the top {k} {t} by {w} {c}."]
    question = rng.choice(phrasings)
    sql = f"SELECT * FROM {table.name} ORDER BY {column.name} {'DESC' if highest else 'ASC'}"
    return question.format(k=k, t=table.name, w=word, c=column.words), f"{sql} LIMIT {k};"


def grouped(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str] | None:
    categorical = [c for c in table.data_columns if c.categorical]
    if not categorical:
        return None
    column = rng.choice(categorical)
    question = rng.choice(["How many {t} are there for each {c}?", "Count the {t} per {c}."])
    sql = f"SELECT {column.name}, COUNT(*) FROM {table.name} GROUP BY {column.name};"
    return question.format(t=table.name, c=column.words), sql


def joined(table: Table, schema: Schema, rng: random.Random) -> tuple[str, str] | None:
    keys = table.foreign_keys()
    if not keys:
        return None
    key = rng.choice(keys)
    assert key.references is not None
    parent = schema.table(key.references)
    column = rng.choice(table.data_columns)
    label = parent.kind.label
    question = rng.choice(
        [
            "List the {c} of each {s} with the {l} of its {p}.",
            "Show every {s}'s {c} together with its {p}'s {l}.",
        ]
    ).format(c=column.words, s=table.singular, l=label.replace("_", " "), p=parent.singular)
    sql = (
        f"SELECT {table.name}.{column.name}, {parent.name}.{label} FROM {table.name} "
        f"JOIN {parent.name} ON {table.name}.{key.name} = {parent.name}.id;"
    )
    return question, sql


TEMPLATES: dict[str, tuple[Template, int]] = {
    "all_rows": (all_rows, 2),
    "columns": (some_columns, 2),
    "filter": (filtered, 4),
    "count": (count, 2),
    "count_where": (count_where, 3),
    "aggregate": (aggregate, 3),
    "top": (top, 3),
    "group_count": (grouped, 2),
    "join": (joined, 4),
}  # fmt: skip


def random_question(schema: Schema, rng: random.Random, kinds: tuple[str, ...]) -> Pair | None:
    """A question of one of ``kinds`` over ``schema`` (None if the template does not fit)."""
    kind = rng.choices(kinds, weights=[TEMPLATES[k][1] for k in kinds])[0]
    # A join question is about the child table; any table fits the others.
    tables = [t for t in schema.tables if t.foreign_keys()] if kind == "join" else None
    made = TEMPLATES[kind][0](rng.choice(tables or schema.tables), schema, rng)
    return None if made is None else Pair(schema, made[0], made[1], kind)


def random_pair(rng: random.Random, kinds: tuple[str, ...] = tuple(TEMPLATES)) -> Pair:
    """A random schema, a question of one of ``kinds`` over it and the SQL that answers it."""
    while True:
        pair = random_question(random_schema(rng), rng, kinds)
        if pair is not None:
            return pair


def random_session(rng: random.Random) -> list[Pair]:
    """One to three questions over the same random schema."""
    first = random_pair(rng)
    more = (random_question(first.schema, rng, tuple(TEMPLATES)) for _ in range(rng.randint(0, 2)))
    return [first, *(pair for pair in more if pair is not None)]


def prompt_messages(pair: Pair, schema_in_system: bool = False) -> list[Message]:
    """The chat that asks the question: the schema in the user message (or the system one)."""
    if schema_in_system:
        return [
            {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{pair.schema.ddl()}"},
            {"role": "user", "content": pair.question},
        ]
    return [{"role": "user", "content": f"{pair.schema.ddl()}\n\nQuestion: {pair.question}"}]


def training_dialogue(session: list[Pair], rng: random.Random) -> list[Message]:
    """The first prompt in either form, its SQL, then each further question and its SQL.

    Several questions share the schema's tokens, so a training step sees more answers.
    """
    messages = prompt_messages(session[0], schema_in_system=rng.random() < 0.3)
    messages.append({"role": "assistant", "content": session[0].sql})
    for pair in session[1:]:
        question = pair.question if rng.random() < 0.5 else f"Question: {pair.question}"
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": pair.sql},
        ]
    return messages


def generate_pairs(seed: int, n: int) -> list[Pair]:
    """``n`` pairs, deterministically from ``seed``."""
    rng = random.Random(seed)
    return [random_pair(rng) for _ in range(n)]


def generate_sessions(seed: int, n: int) -> list[list[Pair]]:
    """``n`` sessions (schemas with one to three questions), deterministically from ``seed``."""
    rng = random.Random(seed)
    return [random_session(rng) for _ in range(n)]
