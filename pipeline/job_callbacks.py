"""What a running job's stages call back: the ``JobCallbacks`` the service hands them.

The orchestrator implements it over its actor handle (``actors.orchestrator``); a run with
no service (``run_in_process``, benchmarks) passes none, and the stages then never stop
early, report nothing and claim their version's directory themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pipeline.placement import Bundle
from pipeline.promotion import ChampionRef
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.storage import Location


class JobCallbacks(Protocol):
    """Calls from one job's stages (in Ray tasks) back to whoever runs the job."""

    def is_cancelled(self) -> bool:
        """Whether the job was cancelled (asked about once a second by a training, every
        two seconds by a search or a backtest)."""
        ...

    def record_live_metrics(self, scores: dict[str, float]) -> None:
        """A running training's best validation scores so far (fire and forget)."""
        ...

    def record_trial(self, trial: TrialReport, progress: SearchProgress) -> None:
        """A finished trial of the job's search (fire and forget)."""
        ...

    def claim_version(self, parent: Location, now: datetime) -> str:
        """The version to register the job's model as, under ``parent``."""
        ...

    def champion(self) -> ChampionRef | None:
        """The version the job's model's ``champion`` alias points at now (None: none)."""
        ...

    def trial_slots(self) -> list[Bundle] | None:
        """The trial slots the job's search holds now (besides its bundles), None when
        that cannot be told: the orchestrator takes them back for more urgent jobs and
        gives them back later."""
        ...
