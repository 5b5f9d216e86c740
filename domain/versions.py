"""Model versions: the second a model was registered, written ``20261127.115810``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

VERSION_FORMAT = "%Y%m%d.%H%M%S"


def first_free_version(now: datetime, free: Callable[[str], bool]) -> str:
    """The version of the first whole second from ``now`` that ``free`` accepts.

    ``free`` is asked about each second in turn, so it may also take the version (create
    its directory, say) and answer whether that worked.
    """
    moment = now.replace(microsecond=0)
    while not free(version := moment.strftime(VERSION_FORMAT)):
        moment += timedelta(seconds=1)
    return version
