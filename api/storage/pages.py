"""Cursor pagination shared by the listings: newest first, ``after`` an object id."""

from __future__ import annotations

from sqlalchemy import Select, Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection


async def page_after(
    conn: AsyncConnection, table: Table, where: list[object], after: str | None
) -> Select[tuple[object, ...]] | None:
    """A select of ``table`` rows under ``where``, newest first, older than ``after``.

    None when ``after`` names no row the caller may see.
    """
    query = select(table).where(*where)  # type: ignore[arg-type]
    if after is not None:
        anchor = (
            await conn.execute(
                select(table.c.created_at).where(table.c.id == after, *where)  # type: ignore[arg-type]
            )
        ).first()
        if anchor is None:
            return None
        query = query.where(
            or_(
                table.c.created_at < anchor.created_at,
                and_(table.c.created_at == anchor.created_at, table.c.id < after),
            )
        )
    return query.order_by(table.c.created_at.desc(), table.c.id.desc())
