"""Writes retried through a database outage, and only through one."""

from __future__ import annotations

import pytest

from actors.durable import durably
from domain.errors import ServiceUnavailable


class FlakyWrite:
    """Fails with ``error`` the first ``failures`` times, then returns its call count."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self, value: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return f"{value} after {self.calls} calls"


async def test_a_write_is_retried_until_the_database_is_back() -> None:
    write = FlakyWrite(2, ServiceUnavailable("database unavailable"))
    assert await durably(30, write, "done") == "done after 3 calls"


async def test_other_errors_are_not_retried() -> None:
    write = FlakyWrite(1, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        await durably(30, write, "done")
    assert write.calls == 1


async def test_an_outage_longer_than_the_limit_raises() -> None:
    write = FlakyWrite(1000, ServiceUnavailable("database unavailable"))
    with pytest.raises(ServiceUnavailable):
        await durably(1.0, write, "done")
    assert 2 <= write.calls <= 4
