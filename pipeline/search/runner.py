"""Where a search's trials run: the protocol the search loop drives (Ray tasks in the
service, ``pipeline.graph.search``), and the one way a trial ends that is no failure."""

from __future__ import annotations

from typing import Any, Protocol

from pipeline.search.pruning import PruningHistory
from pipeline.search_results import TrialReport


class TrialPreempted(Exception):
    """A trial stopped because its CPU was taken back for a more urgent job: not a
    failure; the search runs it again."""


class TrialRunner(Protocol):
    """Where trials run: Ray tasks in the service (``pipeline.graph``)."""

    def submit(
        self,
        number: int,
        params: dict[str, Any],
        completed: PruningHistory,
        running: list[Any],
    ) -> Any:
        """Start a trial; ``completed`` is what it prunes against, ``running`` holds the
        handles of the trials running beside it."""
        ...

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        """The handles of ``pending`` that have finished (waits up to ``timeout``)."""
        ...

    def result(self, handle: Any) -> TrialReport:
        """The trial's report; raises what the trial raised, or ``TrialPreempted``."""
        ...

    def cancel(self, pending: list[Any]) -> None: ...
