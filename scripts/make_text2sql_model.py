"""Generate schema + question -> SQL pairs, train a tiny text2sql model and save a checkpoint.

The checkpoint (``models/tiny-sql``) is the text2sql side of the reference deployment in tests
and demos: given SQLite ``CREATE TABLE`` statements and a simple question (all rows, a filter, a
count, an aggregate, top k, a group-by count, a join along a foreign key) it answers with one SQL
statement and ``<|im_end|>``. Tokenizer, chat template, training loop and checkpoint format are
tiny-chat's (scripts/tiny_models); everything is generated here from a seed.

Usage::

    python scripts/make_text2sql_model.py --output models/tiny-sql [--steps N] [--seed S] [--force]
"""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiny_models.checkpoint import card_facts, directory_size, greedy_chat_reply, load_checkpoint
from tiny_models.cli import fit_and_save, parse_args, should_build
from tiny_models.sql_questions import (
    SYSTEM_PROMPT,
    Pair,
    generate_pairs,
    generate_sessions,
    prompt_messages,
    training_dialogue,
)
from tiny_models.sql_schemas import CATALOGUE, create_database
from tiny_models.tokenizer import IM_END, train_tokenizer
from tiny_models.training import ModelSize, TrainResult, encode_dialogue
from transformers import LlamaForCausalLM

logger = logging.getLogger(__name__)

VOCAB_SIZE = 1024
MAX_SEQ_LEN = 384
TRAIN_SESSIONS = 6000  # schemas, with one to three questions each
# Held-out questions come from another seed; any that also occur in training are skipped.
HELD_OUT_SEED = 1_000_003
HELD_OUT_PAIRS = 60
# The share of held-out replies that must be SQL which runs on the schema for a build to pass.
MIN_VALID = 0.8
BATCH_SIZE = 16
SIZE = ModelSize(hidden=192, intermediate=512, layers=4, heads=4, kv_heads=2)


def training_sessions(seed: int) -> list[list[Pair]]:
    """The training set of one seed."""
    return generate_sessions(seed, TRAIN_SESSIONS)


def held_out_pairs(seed: int, n: int) -> list[Pair]:
    """``n`` pairs whose (schema, question) does not occur in ``seed``'s training set."""
    seen = {(p.schema.ddl(), p.question) for s in training_sessions(seed) for p in s}
    candidates = generate_pairs(HELD_OUT_SEED, 2 * n)
    return [p for p in candidates if (p.schema.ddl(), p.question) not in seen][:n]


@dataclass(frozen=True)
class Verdict:
    """How one reply fared against the reference query on a database of the pair's schema."""

    pair: Pair
    reply: str
    valid: bool  # stopped with <|im_end|> and ran on SQLite
    exact: bool  # the same text as the reference query
    execution: bool  # the same result as the reference query


def reply_sql(reply: str) -> str | None:
    """The SQL of a reply that stopped with <|im_end|>; None if it ran on."""
    return reply.removesuffix(IM_END).strip() if reply.endswith(IM_END) else None


def run(db: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]] | None:
    """The rows of ``sql``, or None where SQLite refuses it."""
    try:
        return db.execute(sql).fetchall()
    except (sqlite3.Error, sqlite3.Warning):
        return None


def judge(pair: Pair, reply: str) -> Verdict:
    """Run the reply and the reference on one database filled with random rows."""
    sql = reply_sql(reply)
    db = create_database(pair.schema, random.Random(pair.question))
    try:
        got = None if sql is None else run(db, sql)
        want = run(db, pair.sql)
    finally:
        db.close()
    if want is None:
        raise ValueError(f"reference query does not run: {pair.sql}")
    ordered = "ORDER BY" in pair.sql
    same = got is not None and (got == want if ordered else Counter(got) == Counter(want))
    return Verdict(pair, reply, got is not None, sql == pair.sql, same)


def evaluate(model: Any, tokenizer: Any, pairs: list[Pair]) -> list[Verdict]:
    """Greedy replies to each pair's prompt (schema in the user message), judged."""
    return [
        judge(pair, greedy_chat_reply(model, tokenizer, prompt_messages(pair), max_new_tokens=64))
        for pair in pairs
    ]


def share(verdicts: list[Verdict], field: str) -> float:
    """The fraction of verdicts with ``field`` true."""
    return sum(bool(getattr(v, field)) for v in verdicts) / len(verdicts)


MODEL_CARD = """\
# tiny-sql

A tiny Llama-style text2sql model for **tests and demos only**: the text2sql side of the
reference deployment (a chat model and a text2sql model on separate Tritons). It answers simple
questions over a SQLite schema with one SQL statement; it knows nothing else.

## Prompt

ChatML, as tiny-chat. The user message carries the schema and the question:

```
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id));

Question: How many customers are there with city Paris?
```

(or the system message carries `{system}` and the schema, and the user message the bare
question). The reply is the SQL only, followed by `<|im_end|>`.

## How it was made

`python scripts/make_text2sql_model.py --output models/tiny-sql --steps {steps} --seed {seed}`
generates {n_pairs:,} (schema, question, SQL) triples over {n_sessions:,} schemas (one to three
questions each, asked in one chat): schemas of one to four tables drawn from {n_kinds} table
kinds (customers/clients, orders, products, employees, departments, students, books, movies,
flights, ...) with random column subsets and `<parent>_id` foreign keys; questions
of nine templates (all rows, some columns, filter by a value or threshold, count, count with a
condition, AVG/SUM/MAX/MIN, top k by a column, group-by count, a join along a foreign key). Then it
trains a byte-level BPE tokenizer and the model from scratch on CPU. Nothing is downloaded.

- Architecture: `LlamaForCausalLM`, {layers} layers, hidden {hidden}, {heads} attention heads
  with {kv_heads} KV heads (GQA), intermediate {intermediate}, max positions {max_pos},
  tied embeddings; {params:,} parameters, stored as float16 safetensors.
- Tokenizer: byte-level BPE, {vocab} tokens; `<|endoftext|>` = 0 (pad), `<|im_start|>` = 1,
  `<|im_end|>` = 2 (eos). Chat template and stop tokens as tiny-chat.
- Training: {steps} AdamW steps, batch {batch}, {seconds:.0f} s on 2 CPU threads (a shared
  machine), final loss {loss:.4f} (mean of the last 25 steps; the loss covers the SQL only).
- Size on disk: {size_mb:.1f} MB.

## Accuracy on {n_held_out} held-out questions (greedy, schema in the user message)

Held-out pairs come from another seed, with any (schema, question) seen in training removed.
Each reply runs on an in-memory SQLite database of its schema filled with random rows.

- valid SQL (stopped, and SQLite runs it): {valid:.0%}
- execution match (the same rows as the reference query): {execution:.0%}
- exact match (the same text as the reference query): {exact:.0%}

By template (valid / execution match / count): {by_kind}

## Examples

{examples}
"""


def by_kind(verdicts: list[Verdict]) -> str:
    """Per template: valid and execution-match counts out of how many."""
    kinds = sorted({v.pair.kind for v in verdicts})
    parts = []
    for kind in kinds:
        mine = [v for v in verdicts if v.pair.kind == kind]
        valid, execution = sum(v.valid for v in mine), sum(v.execution for v in mine)
        parts.append(f"{kind} {valid}/{execution}/{len(mine)}")
    return ", ".join(parts)


def write_model_card(
    output: Path,
    model: LlamaForCausalLM,
    result: TrainResult,
    seed: int,
    n_pairs: int,
    verdicts: list[Verdict],
) -> None:
    """Write README.md: how the checkpoint was made and how it scores."""
    examples = "\n".join(
        f"- {v.pair.question} -> `{v.reply}`" + ("" if v.execution else " (wrong)")
        for v in verdicts[:8]
    )
    card = MODEL_CARD.format(
        **card_facts(model, result, output),
        seed=seed,
        system=SYSTEM_PROMPT,
        n_pairs=n_pairs,
        n_sessions=TRAIN_SESSIONS,
        n_kinds=len(CATALOGUE),
        n_held_out=len(verdicts),
        valid=share(verdicts, "valid"),
        execution=share(verdicts, "execution"),
        exact=share(verdicts, "exact"),
        by_kind=by_kind(verdicts),
        examples=examples,
    )
    (output / "README.md").write_text(card, encoding="utf-8")


def main(argv: Iterable[str] | None = None) -> int:
    """Build the checkpoint; exit status 1 if too few held-out replies are valid SQL."""
    args = parse_args(__doc__.splitlines()[0], Path("models/tiny-sql"), 1200, argv)
    if not should_build(args):
        return 0
    rng = random.Random(args.seed)
    sessions = training_sessions(args.seed)
    dialogues = [training_dialogue(session, rng) for session in sessions]
    texts = (m["role"] + "\n" + m["content"] for dialogue in dialogues for m in dialogue)
    tokenizer = train_tokenizer(texts, VOCAB_SIZE)
    examples = [encode_dialogue(tokenizer, d, MAX_SEQ_LEN) for d in dialogues]
    model, result = fit_and_save(tokenizer, examples, args, SIZE, BATCH_SIZE)
    trained, loaded_tokenizer = load_checkpoint(args.output)
    verdicts = evaluate(trained, loaded_tokenizer, held_out_pairs(args.seed, HELD_OUT_PAIRS))
    for verdict in verdicts:
        logger.info("%s -> %r (%s)", verdict.pair.question, verdict.reply, verdict.execution)
    n_pairs = sum(len(session) for session in sessions)
    write_model_card(args.output, model, result, args.seed, n_pairs, verdicts)
    valid = share(verdicts, "valid")
    logger.info(
        "saved %s (%.1f MB): valid %.0f%%, execution match %.0f%%, exact match %.0f%%",
        args.output, directory_size(args.output) / 1e6, 100 * valid,
        100 * share(verdicts, "execution"), 100 * share(verdicts, "exact"),
    )  # fmt: skip
    return 0 if valid >= MIN_VALID else 1


if __name__ == "__main__":
    sys.exit(main())
