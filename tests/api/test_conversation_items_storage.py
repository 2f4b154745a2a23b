"""Conversation items in the database: the 0005 data migration and the storage functions,
on SQLite and on the test PostgreSQL server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from api.storage import conversation_items as store
from api.storage import migrate
from api.storage.engine import create_engine

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def database_url(database: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if database == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'items.db'}"


def run(url: str, scenario: Any) -> Any:
    async def main() -> Any:
        engine = create_engine(url)
        try:
            return await scenario(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


_WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _legacy_rows(engine: AsyncEngine) -> None:
    """Two conversations as release 0004 stored them: one with a system prompt."""
    await migrate.upgrade(engine, "0004_usage_interrupted")
    usage = {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO conversations (id, org_id, key_id, model, system_prompt, metadata,"
                " created_at) VALUES (:id, 'org_a', 'key_a', 'tiny-chat', :prompt, NULL, :at)"
            ),
            [
                {"id": "conv_old1", "prompt": "Be brief.", "at": _WHEN},
                {"id": "conv_old2", "prompt": None, "at": _WHEN},
            ],
        )
        await conn.execute(
            sa.text(
                "INSERT INTO conversation_messages (id, conversation_id, seq, role, content,"
                " status, usage, created_at) VALUES (:id, :conv, :seq, :role, :content,"
                " :status, :usage, :at)"
            ),
            [
                {"id": "msg_u1", "conv": "conv_old1", "seq": 1, "role": "user",
                 "content": "Hi", "status": "completed", "usage": None, "at": _WHEN},
                {"id": "msg_a1", "conv": "conv_old1", "seq": 2, "role": "assistant",
                 "content": "Hello", "status": "incomplete", "usage": _json(usage), "at": _WHEN},
                {"id": "msg_u2", "conv": "conv_old2", "seq": 1, "role": "user",
                 "content": "Yo", "status": "completed", "usage": None, "at": _WHEN},
            ],
        )  # fmt: skip


def _json(value: object) -> str:
    import json

    return json.dumps(value)


async def _migrated(engine: AsyncEngine) -> dict[str, Any]:
    await _legacy_rows(engine)
    await migrate.upgrade(engine)
    first = await store.list_items(engine, "org_a", "conv_old1", order="asc")
    second = await store.list_items(engine, "org_a", "conv_old2", order="asc")
    conversation = await store.get_conversation(engine, "org_a", "conv_old1")
    await migrate_down(engine)
    async with engine.connect() as conn:
        restored = (
            await conn.execute(
                sa.text(
                    "SELECT c.id, c.system_prompt, m.id AS mid, m.seq, m.role, m.content, m.status"
                    " FROM conversations c JOIN conversation_messages m"
                    " ON m.conversation_id = c.id ORDER BY c.id, m.seq"
                )
            )
        ).all()
    return {
        "first": first,
        "second": second,
        "conversation": conversation,
        "restored": [tuple(row) for row in restored],
    }


async def migrate_down(engine: AsyncEngine) -> None:
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(
            lambda sync: command.downgrade(migrate.alembic_config(sync), "0004_usage_interrupted")
        )


@pytest.mark.parametrize("database", DATABASES)
def test_the_migration_moves_messages_into_items_and_back(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    found = run(database_url(database, tmp_path, request), _migrated)
    first = [item.public() for item in found["first"]]
    assert first[0]["role"] == "system" and first[0]["id"].startswith("msg_")
    assert first[0]["content"] == [{"type": "input_text", "text": "Be brief."}]
    assert first[1:] == [
        {"type": "message", "id": "msg_u1", "status": "completed", "role": "user",
         "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "message", "id": "msg_a1", "status": "incomplete", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello", "annotations": []}]},
    ]  # fmt: skip
    assert [item.position for item in found["first"]] == [0, 1, 2]
    assert found["first"][2].usage == {
        "prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13
    }  # fmt: skip
    assert [item.id for item in found["second"]] == ["msg_u2"]
    assert found["conversation"].model == "tiny-chat"
    assert found["conversation"].public()["metadata"] == {}
    # Downgraded: the same messages, the system prompt back in its column.
    assert found["restored"] == [
        ("conv_old1", "Be brief.", "msg_u1", 1, "user", "Hi", "completed"),
        ("conv_old1", "Be brief.", "msg_a1", 2, "assistant", "Hello", "incomplete"),
        ("conv_old2", None, "msg_u2", 1, "user", "Yo", "completed"),
    ]


def _message(text: str, role: str = "user", **extra: Any) -> dict[str, Any]:
    part = {"type": "input_text", "text": text}
    return {"type": "message", "role": role, "status": "completed", "content": [part], **extra}


async def _storage_scenario(engine: AsyncEngine) -> dict[str, Any]:
    await migrate.upgrade(engine)
    created = await store.create_conversation(
        engine, "org_a", {"topic": "sea"}, [_message("one"), _message("two")]
    )
    out: dict[str, Any] = {"created": created}
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    out["appended"] = await store.append_items(
        engine, "org_a", created.id, [call, _message("three", id="msg_mine")]
    )
    out["desc"] = await store.list_items(engine, "org_a", created.id)
    out["asc_after"] = await store.list_items(
        engine, "org_a", created.id, after=out["desc"][-1].id, limit=2, order="asc"
    )
    out["unknown_after"] = await store.list_items(engine, "org_a", created.id, after="msg_x")
    with pytest.raises(store.ItemIdTaken) as taken:
        await store.append_items(engine, "org_a", created.id, [_message("x", id="msg_mine")])
    out["taken_index"] = taken.value.index
    for call_ in (
        store.get_conversation(engine, "org_b", created.id),
        store.list_items(engine, "org_b", created.id),
        store.append_items(engine, "org_b", created.id, [_message("x")]),
        store.get_item(engine, "org_b", created.id, "msg_mine"),
        store.delete_item(engine, "org_b", created.id, "msg_mine"),
        store.update_metadata(engine, "org_b", created.id, {}),
        store.delete_conversation(engine, "org_b", created.id),
    ):
        with pytest.raises(store.ConversationNotFound):
            await call_
    # Concurrent appends all land, each at its own position.
    await asyncio.gather(
        *(store.append_items(engine, "org_a", created.id, [_message(str(n))]) for n in range(8))
    )
    out["count"] = len(await store.list_items(engine, "org_a", created.id, limit=None) or [])
    out["deleted"] = await store.delete_item(engine, "org_a", created.id, "msg_mine")
    out["gone"] = await store.get_item(engine, "org_a", created.id, "msg_mine")
    out["updated"] = await store.update_metadata(engine, "org_a", created.id, {"k": "v"})
    out["reread"] = await store.get_conversation(engine, "org_a", created.id)
    await store.delete_conversation(engine, "org_a", created.id)
    with pytest.raises(store.ConversationNotFound):
        await store.get_conversation(engine, "org_a", created.id)
    return out


@pytest.mark.parametrize("database", DATABASES)
def test_items_are_stored_in_order_and_scoped_by_organization(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out = run(database_url(database, tmp_path, request), _storage_scenario)
    created = out["created"]
    assert created.id.startswith("conv_") and created.metadata == {"topic": "sea"}
    call, mine = out["appended"]
    assert call.id.startswith("fc_") and call.item["id"] == call.id
    assert mine.id == "msg_mine" and mine.position == 4
    assert [item.item["content"][0]["text"] for item in out["desc"] if item.type == "message"] == [
        "three", "two", "one"
    ]  # fmt: skip
    assert [item.position for item in out["asc_after"]] == [2, 3]
    assert out["unknown_after"] is None
    assert out["taken_index"] == 0
    assert out["count"] == 4 + 8
    assert out["deleted"] is True and out["gone"] is None
    assert out["updated"].metadata == out["reread"].metadata == {"k": "v"}
