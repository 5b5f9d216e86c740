"""The shape every list response shares: one list of items, the total and the page."""

from __future__ import annotations

from typing import Any, Self, get_origin

from pydantic import BaseModel

from db.records import Page


class PagePublic(BaseModel):
    """A page of results; a subclass adds its list of items under its own name."""

    total: int
    page: int
    page_size: int

    @classmethod
    def of(cls, page: Page[Any], **extra: Any) -> Self:
        """The response for a page of records (each item validated from its record) in the
        subclass's one list field, with its other fields from ``extra``."""
        (items,) = (
            name
            for name, info in cls.model_fields.items()
            if name not in PagePublic.model_fields and get_origin(info.annotation) is list
        )
        return cls.model_validate(
            {
                **extra,
                items: list(page.items),
                "total": page.total,
                "page": page.page,
                "page_size": page.page_size,
            }
        )
