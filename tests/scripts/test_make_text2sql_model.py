"""scripts/make_text2sql_model.py: held-out questions, judging replies, idempotent builds."""

from __future__ import annotations

import random
from pathlib import Path

import make_text2sql_model as script
import pytest
from tiny_models.sql_questions import Pair, generate_pairs
from tiny_models.sql_schemas import create_database
from tiny_models.tokenizer import IM_END


def finds_rows(pair: Pair) -> bool:
    """Whether the reference query returns rows on the database judge() builds."""
    db = create_database(pair.schema, random.Random(pair.question))
    try:
        return bool(db.execute(pair.sql).fetchall())
    finally:
        db.close()


@pytest.fixture(scope="module")
def pair() -> Pair:
    filters = (p for p in generate_pairs(4, 200) if p.kind == "filter" and "=" in p.sql)
    return next(p for p in filters if finds_rows(p))


def test_the_reference_query_scores_on_every_count(pair: Pair) -> None:
    verdict = script.judge(pair, pair.sql + IM_END)
    assert (verdict.valid, verdict.exact, verdict.execution) == (True, True, True)


def test_an_equivalent_query_matches_on_execution_only(pair: Pair) -> None:
    lower = pair.sql.replace("SELECT * FROM", "select * from").replace("WHERE", "where")
    verdict = script.judge(pair, lower + IM_END)
    assert (verdict.valid, verdict.exact, verdict.execution) == (True, False, True)


def test_a_query_with_other_rows_is_valid_but_wrong(pair: Pair) -> None:
    table = pair.schema.tables[0].name
    verdict = script.judge(pair, f"SELECT * FROM {table} WHERE id < 0;{IM_END}")
    assert (verdict.valid, verdict.execution) == (True, False)


@pytest.mark.parametrize(
    "reply",
    [
        "SELECT * FROM no_such_table;" + IM_END,
        "SELECT nope FROM {table};" + IM_END,
        "SELECT * FROM {table}; SELECT 1;" + IM_END,
        "SELECT * FRM {table};" + IM_END,
        "The answer is 42." + IM_END,
        "SELECT * FROM {table};",  # never stopped: cut off by max_new_tokens
    ],
)
def test_replies_that_do_not_run_are_invalid(pair: Pair, reply: str) -> None:
    verdict = script.judge(pair, reply.format(table=pair.schema.tables[0].name))
    assert (verdict.valid, verdict.exact, verdict.execution) == (False, False, False)


def test_order_matters_only_where_the_reference_orders() -> None:
    top = next(p for p in generate_pairs(5, 400) if p.kind == "top" and "LIMIT 1;" not in p.sql)
    flipped = top.sql.replace(" DESC ", " X ").replace(" ASC ", " DESC ").replace(" X ", " ASC ")
    assert not script.judge(top, flipped + IM_END).execution
    rows = next(p for p in generate_pairs(6, 200) if p.kind == "all_rows")
    reordered = rows.sql.removesuffix(";") + " ORDER BY id DESC;"
    assert script.judge(rows, reordered + IM_END).execution


def test_held_out_questions_are_not_training_questions() -> None:
    held_out = script.held_out_pairs(0, 20)
    assert len(held_out) == 20
    seen = {(p.schema.ddl(), p.question) for s in script.training_sessions(0) for p in s}
    assert not seen & {(p.schema.ddl(), p.question) for p in held_out}


def test_an_existing_checkpoint_is_kept_without_force(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert script.main(["--output", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
