"""Model versions: the second a model was registered, ``20261127.115810``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

VERSION_FORMAT = "%Y%m%d.%H%M%S"


def versions_from(moment: datetime) -> Iterator[str]:
    """The versions to try, in order: ``moment``'s second, then each second after it."""
    moment = moment.replace(microsecond=0)
    while True:
        yield moment.strftime(VERSION_FORMAT)
        moment += timedelta(seconds=1)
