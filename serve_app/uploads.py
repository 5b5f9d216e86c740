"""Feature-set uploads on one API replica: the limits on each (the body's size, the table's
size once decompressed, its columns) and on how many run at once.

An upload over a size limit is 413 and one with too many columns 422, each naming the
limit; one more upload than the replica runs at once is 503 with ``Retry-After``, refused
before its body is read. A refused upload leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from domain.errors import ServiceUnavailable, TooLarge
from pipeline.versions.reading import ImportLimits


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may be, and how many a replica takes at once (``ApiSettings``)."""

    max_bytes: int
    max_decompressed_bytes: int
    max_columns: int
    max_concurrent: int

    def check_size(self, size: int) -> None:
        """Raises: TooLarge: the body has grown past ``max_bytes``."""
        if size > self.max_bytes:
            raise TooLarge(f"the file exceeds the upload limit of {self.max_bytes // 2**20} MiB")

    def for_import(self) -> ImportLimits:
        return ImportLimits(max_columns=self.max_columns, max_bytes=self.max_decompressed_bytes)


class UploadBusy(ServiceUnavailable):
    """The replica runs as many uploads as it may; the client retries later."""


@dataclass
class Uploads:
    """The uploads one replica runs; claimed and released on its event loop."""

    limits: UploadLimits
    _running: int = field(default=0, init=False)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the replica's upload slots for the duration.

        Raises:
            UploadBusy: every slot is taken.
        """
        if self._running >= self.limits.max_concurrent:
            raise UploadBusy(
                f"this API replica is importing {self._running} uploads, as many as it "
                "takes at once; retry shortly"
            )
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
