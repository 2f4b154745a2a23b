"""The shipped text2sql checkpoint in models/tiny-sql (built by scripts/make_text2sql_model.py).

Greedy replies to held-out questions (another seed, none seen in training) must mostly be SQL
that SQLite runs on the question's schema. Loads the shipped weights; never retrains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import make_text2sql_model as script
import pytest
from tiny_models.checkpoint import greedy_chat_reply, load_checkpoint
from tiny_models.sql_questions import prompt_messages

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "tiny-sql"
HELD_OUT = 24
# Measured on this checkpoint: 24/24 valid, 24/24 execution match, 24/24 exact (and 60/60
# valid, 60/60 execution, 59/60 exact over the 60 of models/tiny-sql/README.md).
MIN_VALID = 0.9
MIN_EXECUTION_MATCH = 0.9


@pytest.fixture(scope="module")
def checkpoint() -> tuple[Any, Any]:
    loaded: tuple[Any, Any] = load_checkpoint(MODEL_DIR)
    return loaded


@pytest.fixture(scope="module")
def verdicts(checkpoint: tuple[Any, Any]) -> list[script.Verdict]:
    model, tokenizer = checkpoint
    judged: list[script.Verdict] = script.evaluate(
        model, tokenizer, script.held_out_pairs(0, HELD_OUT)
    )
    return judged


def test_tokens_and_stopping_are_tiny_chats(checkpoint: tuple[Any, Any]) -> None:
    _, tokenizer = checkpoint
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert ids == [0, 1, 2] and tokenizer.eos_token == "<|im_end|>"
    config = json.loads((MODEL_DIR / "generation_config.json").read_text(encoding="utf-8"))
    assert config["eos_token_id"] == [2, 0]


def test_most_held_out_replies_are_sql_that_runs(verdicts: list[script.Verdict]) -> None:
    failures = [(v.pair.question, v.reply) for v in verdicts if not v.valid]
    assert script.share(verdicts, "valid") >= MIN_VALID, failures


def test_most_held_out_replies_return_the_right_rows(verdicts: list[script.Verdict]) -> None:
    wrong = [(v.pair.sql, v.reply) for v in verdicts if not v.execution]
    assert script.share(verdicts, "execution") >= MIN_EXECUTION_MATCH, wrong


def test_the_schema_may_come_in_the_system_message(checkpoint: tuple[Any, Any]) -> None:
    model, tokenizer = checkpoint
    pairs = script.held_out_pairs(0, 8)
    replies = [
        greedy_chat_reply(model, tokenizer, prompt_messages(p, schema_in_system=True), 64)
        for p in pairs
    ]
    verdicts = [script.judge(p, r) for p, r in zip(pairs, replies, strict=True)]
    assert script.share(verdicts, "valid") >= 0.75, replies
