"""Usage records and their daily roll-ups in the database.

A batch goes in with one transaction: records are inserted with ON CONFLICT DO NOTHING and
only the rows actually inserted are added to ``usage_daily``, so replaying a journal after a
crash never counts a request twice. Queries read the roll-up, which stays small (one row per
day, key and model) however many requests there are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.storage.tables import usage_daily, usage_records
from api.usage.records import UsageRecord

GROUPS = ("day", "model", "org_id", "key_id")
SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nanos")


class UsageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def write(self, records: Sequence[UsageRecord]) -> int:
        """Insert ``records`` (duplicates skipped) and roll them up; returns rows inserted."""
        if not records:
            return 0
        rows = [record.to_row() for record in records]
        try:
            # Fast path: a batch of new records is one plain executemany (no RETURNING, no
            # conflict handling), several times cheaper per record.
            async with self._engine.begin() as conn:
                await conn.execute(usage_records.insert(), rows)
                await self._roll_up(conn, records)
            return len(records)
        except IntegrityError:
            # Some are stored already (a journal replayed after a crash, or a write that
            # committed before its error): the transaction is gone, so skip the known ones.
            return await self._write_new_only(records, rows)

    async def _write_new_only(
        self, records: Sequence[UsageRecord], rows: list[dict[str, Any]]
    ) -> int:
        async with self._engine.begin() as conn:
            statement = (
                self._insert(usage_records).on_conflict_do_nothing().returning(usage_records.c.id)
            )
            result = await conn.execute(statement, rows)
            inserted = {row.id for row in result}
            # Once per inserted id, even if a batch (a replayed journal) holds it twice.
            fresh = {r.id: r for r in reversed(records) if r.id in inserted}
            await self._roll_up(conn, list(fresh.values()))
        return len(inserted)

    async def _roll_up(self, conn: AsyncConnection, records: Sequence[UsageRecord]) -> None:
        totals: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0] * len(SUMS))
        for record in records:
            row = totals[(record.day, record.key_id, record.model, record.org_id)]
            values = (
                1,
                int(record.status >= 400),
                record.prompt_tokens,
                record.completion_tokens,
                record.cached_tokens,
                record.cost_nanos,
            )
            for index, value in enumerate(values):
                row[index] += value
        for (day, key_id, model, org_id), sums in totals.items():
            statement = self._insert(usage_daily).values(
                day=day,
                key_id=key_id,
                model=model,
                org_id=org_id,
                **dict(zip(SUMS, sums, strict=True)),
            )
            increments = {name: usage_daily.c[name] + statement.excluded[name] for name in SUMS}
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["day", "key_id", "model"], set_=increments
                )
            )

    async def summary(
        self,
        group_by: Sequence[str],
        start_day: str,
        end_day: str,
        **filters: str | None,
    ) -> list[dict[str, Any]]:
        """Sums per group over ``[start_day, end_day]`` (``YYYY-MM-DD``), filters by equality."""
        columns = [usage_daily.c[name] for name in group_by]
        sums = [func.sum(usage_daily.c[name]).label(name) for name in SUMS]
        query = select(*columns, *sums).where(usage_daily.c.day.between(start_day, end_day))
        for name, value in filters.items():
            if value is not None:
                query = query.where(usage_daily.c[name] == value)
        query = query.group_by(*columns).order_by(*columns)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
            # str(): column keys are quoted_name objects, which JSON encoders refuse.
            return [
                {str(k): (int(v or 0) if k in SUMS else v) for k, v in row._mapping.items()}
                for row in rows
            ]

    async def count_records(self) -> int:
        async with self._engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(usage_records))).scalar_one()
            )
