"""The text2sql model (models/tiny-sql) on a Triton of its own, behind an API that routes by name.

The reference deployment puts a chat model and a text2sql model on separate Tritons. Here a
second launcher serves ``models/tiny-sql`` (TRITON_LLM_MODEL_DIR) on its own ports, an API
process lists only that model (API_MODELS from the model's engine spec) and points at that
Triton; its replies to questions over a schema must be SQL that SQLite runs on that schema.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from launcher.engine_plan import served_models
from launcher.engine_spec import load_spec
from tests.e2e.conftest import ROOT
from tests.e2e.harness import Api, Triton, content_of, sse_events

pytestmark = pytest.mark.e2e

MODEL = "tiny-sql"
MODEL_DIR = ROOT / "models" / MODEL
SPEC = ROOT / "engines" / "specs" / f"{MODEL}.toml"
CHAT = "/v1/chat/completions"
Server = TypeVar("Server", Triton, Api)

SCHEMA = """\
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), \
total REAL, status TEXT);"""
QUESTIONS = {
    "How many customers are there?": "SELECT COUNT(*) FROM customers;",
    "Show the customers whose city is Paris.": "SELECT * FROM customers WHERE city = 'Paris';",
    "What is the average total of the orders?": "SELECT AVG(total) FROM orders;",
    "Show the 3 orders with the highest total.":
        "SELECT * FROM orders ORDER BY total DESC LIMIT 3;",
    "Count the customers per city.": "SELECT city, COUNT(*) FROM customers GROUP BY city;",
    "List the total of each order with the name of its customer.":
        "SELECT orders.total, customers.name FROM orders "
        "JOIN customers ON orders.customer_id = customers.id;",
}  # fmt: skip


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text2sql-logs")


def running(server: Server) -> Iterator[Server]:
    """Start ``server`` for a module's tests and stop it after them."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def triton(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triton]:
    server = Triton(logs, tmp_path_factory.mktemp("text2sql-repository"))
    # The launcher's setting that picks the checkpoint (and, by default, its tokenizer).
    server.env["TRITON_LLM_MODEL_DIR"] = str(MODEL_DIR)
    yield from running(server)


@pytest.fixture(scope="module")
def api(triton: Triton, logs: Path) -> Iterator[Api]:
    models = json.dumps(served_models(load_spec(SPEC)))
    yield from running(Api(logs, "text2sql", triton.grpc_url, API_MODELS=models))


def ask(api: Api, question: str, **extra: object) -> dict[str, object]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"{SCHEMA}\n\nQuestion: {question}"}],
        "temperature": 0,
        **extra,
    }
    response = api.post(CHAT, body, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def runs_on_schema(sql: str) -> bool:
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        db.execute(sql).fetchall()
        return True
    except sqlite3.Error:
        return False
    finally:
        db.close()


def reply_text(completion: dict[str, object]) -> str:
    choices = completion["choices"]
    assert isinstance(choices, list)
    return str(choices[0]["message"]["content"])


def test_the_reference_queries_run_on_the_schema() -> None:
    """The check below would accept these: it is not vacuous."""
    assert all(runs_on_schema(sql) for sql in QUESTIONS.values())
    assert not runs_on_schema("SELECT * FROM products;")
    assert not runs_on_schema("How many customers are there?")


def test_the_api_serves_the_text2sql_model_by_name(api: Api) -> None:
    listed = httpx.get(f"{api.url}/v1/models", headers=api.headers, timeout=10).json()
    assert [model["id"] for model in listed["data"]] == [MODEL]
    other = api.post(CHAT, {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]})
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "model_not_found"


def test_replies_are_sql_that_runs_on_the_schema(api: Api) -> None:
    replies = {question: reply_text(ask(api, question)) for question in QUESTIONS}
    invalid = {q: sql for q, sql in replies.items() if not runs_on_schema(sql)}
    assert not invalid, f"replies SQLite refuses: {invalid}"
    completion = ask(api, "How many customers are there?")
    assert reply_text(completion) == QUESTIONS["How many customers are there?"]
    assert completion["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


def test_a_streamed_reply_is_the_same_sql(api: Api) -> None:
    question = "Show the customers whose city is Paris."
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"{SCHEMA}\n\nQuestion: {question}"}],
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{api.url}{CHAT}", json=body, headers=api.headers, timeout=120
    ) as response:
        assert response.status_code == 200
        events = list(sse_events(response.iter_lines()))
    assert events[-1] == "[DONE]"
    streamed = "".join(content_of(event) for event in events)
    assert streamed == reply_text(ask(api, question))
    assert runs_on_schema(streamed)
