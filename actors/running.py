"""A job between leaving the queue and its outcome being written, and what the lifecycle
follows of its launched run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from actors.recorder import SearchRecorder, StageRecorder
from pipeline.context import JobContext
from pipeline.job_callbacks import JobCallbacks
from pipeline.models.register import SavedModel
from pipeline.placement import Placement
from pipeline.resources import Demand
from pipeline.stages import StageReport


class LaunchedRun(Protocol):
    """What the lifecycle follows of a launched job (``pipeline.graph.launch.PipelineRun``)."""

    @property
    def reports(self) -> Sequence[Awaitable[StageReport]]:
        """Each stage's report, in running order; a failed stage's raises its error."""
        ...

    @property
    def result(self) -> Awaitable[SavedModel]:
        """The model the last stage registered."""
        ...

    def cancel(self, force: bool = False) -> None:
        """Stop the stage that is running (``force``: kill its worker)."""
        ...


#: Starts a job's stages in its reservation and returns at once (``pipeline.graph.launch``).
Launch = Callable[[JobContext, JobCallbacks, Placement], LaunchedRun]


@dataclass
class RunningJob:
    """One job between leaving the queue and its outcome being written."""

    tenant_id: str
    priority: int
    demand: Demand
    #: It started ahead of a job that waited for CPUs (``actors.dispatch``).
    passed: bool = False
    #: How often its trial slots were taken back.
    preemptions: int = 0
    #: Whether Ray has placed its reservation.
    placed: bool = False
    cancelled: bool = False
    #: Set when it is launched, or ends before (a dispatch pass waits for it).
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when it is cancelled (its placement stops being awaited).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once launched (a job cancelled while starting is never launched).
    run: LaunchedRun | None = None
    #: Whether its follower took it over (it then ends the job).
    launched: bool = False
    recorder: StageRecorder | None = None
    search: SearchRecorder | None = None
    #: Held here: the event loop keeps only weak references to tasks.
    tasks: tuple[asyncio.Task[None], ...] = ()
