"""Paging of long lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.errors import N_, Invalid

T = TypeVar("T")
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    def meta(self) -> dict[str, int]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "pages": self.pages,
        }


def page_args(query: Any, default_per_page: int = 20) -> tuple[int, int]:
    try:
        page = int(query.get("page", 1))
        per_page = int(query.get("per_page", default_per_page))
    except (TypeError, ValueError):
        raise Invalid(N_("The page number must be a whole number."), field="page") from None
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(
            N_("Pages start at 1 and hold at most %(max)s items."), field="page", max=MAX_PER_PAGE
        )
    return page, per_page


async def paginate(
    db: AsyncSession, query: Select[Any], page: int, per_page: int, *, rows: bool = False
) -> Page[Any]:
    """One page of ``query``: its first entity, or whole rows when ``rows``."""
    total = await db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    limited = query.limit(per_page).offset((page - 1) * per_page)
    items = (await db.execute(limited)).all() if rows else (await db.scalars(limited)).all()
    return Page(items, page, per_page, int(total or 0))
