"""The shape every list response shares: one list of items, the total and the page."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel

from db.records import Page


class PagePublic(BaseModel):
    """A page of results; a subclass adds its list of items under its own name."""

    total: int
    page: int
    page_size: int

    @classmethod
    def of(cls, page: Page[Any]) -> Self:
        """The response for a page of records (each item validated from its record)."""
        (items,) = cls.model_fields.keys() - PagePublic.model_fields.keys()
        return cls.model_validate(
            {
                items: list(page.items),
                "total": page.total,
                "page": page.page,
                "page_size": page.page_size,
            }
        )
