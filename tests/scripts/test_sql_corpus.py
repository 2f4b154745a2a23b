"""scripts/tiny_models/sql_schemas.py and sql_questions.py: the text2sql training data."""

from __future__ import annotations

import random
import sqlite3

import pytest
from tiny_models.sql_questions import (
    SYSTEM_PROMPT,
    TEMPLATES,
    Pair,
    generate_pairs,
    generate_sessions,
    prompt_messages,
    random_pair,
    training_dialogue,
)
from tiny_models.sql_schemas import CATALOGUE, create_database, random_schema


@pytest.fixture(scope="module")
def pairs() -> list[Pair]:
    made: list[Pair] = generate_pairs(7, 1500)
    return made + [p for s in generate_sessions(8, 500) for p in s]


def test_every_generated_query_runs_on_its_schema(pairs: list[Pair]) -> None:
    for pair in pairs:
        db = sqlite3.connect(":memory:")
        db.executescript(pair.schema.ddl())
        db.execute(pair.sql).fetchall()  # raises on a query the schema cannot answer
        db.close()


def test_queries_return_rows_on_the_filled_database(pairs: list[Pair]) -> None:
    """Unfiltered questions always find rows; most filtered ones do too."""
    found = 0
    for pair in pairs:
        db = create_database(pair.schema, random.Random(pair.question))
        rows = db.execute(pair.sql).fetchall()
        db.close()
        if pair.kind in {"all_rows", "columns", "count", "group_count", "join", "aggregate"}:
            assert rows, pair
        found += bool(rows)
    assert found > 0.7 * len(pairs)


def test_every_template_is_generated(pairs: list[Pair]) -> None:
    assert {p.kind for p in pairs} == set(TEMPLATES)


def test_a_kind_filter_is_respected() -> None:
    rng = random.Random(3)
    assert {random_pair(rng, ("join",)).kind for _ in range(50)} == {"join"}


def test_generation_is_deterministic() -> None:
    assert generate_pairs(11, 50) == generate_pairs(11, 50)
    assert generate_pairs(11, 50) != generate_pairs(12, 50)


def test_schemas_are_varied_and_consistent() -> None:
    rng = random.Random(5)
    names: set[str] = set()
    for _ in range(400):
        schema = random_schema(rng)
        tables = {t.name for t in schema.tables}
        assert len(tables) == len(schema.tables), "a table name twice"
        for table in schema.tables:
            names.add(table.name)
            assert table.columns[0].name == "id"
            assert len({c.name for c in table.columns}) == len(table.columns)
            for key in table.foreign_keys():
                assert key.references in tables and key.name.endswith("_id")
    # Every kind shows up, some under more than one name (customers, clients).
    assert len(names) > len(CATALOGUE)


def test_join_questions_follow_a_foreign_key(pairs: list[Pair]) -> None:
    joins = [p for p in pairs if p.kind == "join"]
    assert joins
    for pair in joins:
        child = next(t for t in pair.schema.tables if f"FROM {t.name} JOIN" in pair.sql)
        assert any(f"{child.name}.{k.name} = " in pair.sql for k in child.foreign_keys())


def test_prompt_carries_the_schema_and_question(pairs: list[Pair]) -> None:
    pair = pairs[0]
    [user] = prompt_messages(pair)
    assert user["role"] == "user"
    assert user["content"] == f"{pair.schema.ddl()}\n\nQuestion: {pair.question}"
    assert pair.schema.ddl().startswith("CREATE TABLE ")
    system, question = prompt_messages(pair, schema_in_system=True)
    assert system["content"] == f"{SYSTEM_PROMPT}\n\n{pair.schema.ddl()}"
    assert question == {"role": "user", "content": pair.question}


def test_training_dialogues_answer_each_question_with_its_sql() -> None:
    rng = random.Random(2)
    for session in generate_sessions(9, 100):
        dialogue = training_dialogue(session, rng)
        answers = [m["content"] for m in dialogue if m["role"] == "assistant"]
        assert answers == [p.sql for p in session]
        roles = [m["role"] for m in dialogue if m["role"] != "system"]
        assert roles == ["user", "assistant"] * len(session)
        assert all(p.schema == session[0].schema for p in session)
