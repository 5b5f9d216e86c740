"""Path and query parameter types shared by the routers.

Identifiers and names are held to the characters they can have, so a value the database
cannot store (a NUL byte, say) is a 422 at the door and never a 500 from the driver.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, StringConstraints

from domain.names import NAME_PATTERN

#: Job, experiment and schedule ids (UUIDs) and model ids (``tenant:model:version``).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,299}$"
METRIC_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

ResourceId = Annotated[str, Path(pattern=ID_PATTERN)]
NamePath = Annotated[str, Path(pattern=NAME_PATTERN)]
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]
NameFilter = Annotated[str | None, Query(pattern=NAME_PATTERN)]
NameQuery = Annotated[str, Query(pattern=NAME_PATTERN)]
MetricFilter = Annotated[str | None, Query(pattern=METRIC_PATTERN)]
#: One series of a stored forecast or detection (its rows alone).
SeriesFilter = Annotated[
    str | None, Query(min_length=1, max_length=256, description="One series' rows alone.")
]


def _utc(moment: datetime | None) -> datetime | None:
    """The time in UTC; one without a zone is UTC, as everywhere in the service.

    Raises:
        ValueError: it is not a time in UTC's years 1 to 9999 (0001-01-01T00:00+05:00).
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time falls outside the years 1 to 9999 in UTC") from None


#: A time in the query (``2025-01-01``, ``2025-01-01T06:00+02:00``); without a zone, UTC.
UtcQuery = Annotated[datetime | None, AfterValidator(_utc)]
IdItem = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MetricName = Annotated[str, StringConstraints(pattern=METRIC_PATTERN)]
