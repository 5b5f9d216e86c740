"""Pages of a query: the one place that turns (page, page_size) into OFFSET/LIMIT and counts
what matches."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.records import Page

T = TypeVar("T")


async def paginate(
    session: AsyncSession,
    query: Select[T],
    page: int,
    page_size: int,
    *,
    matching: Select[Any] | None = None,
) -> Page[T]:
    """One page (1-based) of ``query``'s rows and how many rows match in all.

    The total counts the rows of ``matching`` (``query`` without its order by default):
    pass the unsorted query when sorting needs a join that counting can do without.
    """
    window = query.offset((page - 1) * page_size).limit(page_size)
    rows = (await session.scalars(window)).all()
    counted = (query if matching is None else matching).order_by(None).subquery()
    total = (await session.execute(select(func.count()).select_from(counted))).scalar_one()
    return Page(list(rows), int(total), page, page_size)
