"""What a job holds while it runs: the CPU bundles its config asks for.

The orchestrator reserves a job's bundles as Ray placement groups before the job starts,
and every task of the job runs inside them (``pipeline.placement``), so the CPUs it
counts as taken are the CPUs the job's work uses. The layout:

- the first bundle is the *stage bundle*: the stages run there one after another, and a
  plain job's training uses all of its CPUs (a data-parallel job's first worker's);
- what fans out (search trials, per-series chunks, backtest windows, feature parts) runs
  one task per CPU over the bundles;
- a data-parallel job holds one bundle per Ray Train worker, spread over the nodes;
- a search's trials run one per CPU of its bundles, and beyond them hold *trial slots*:
  one-CPU placement groups of their own, which a more urgent job may take back (the
  trial runs again later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import TrainingConfig

#: The CPUs one search trial, per-series chunk, backtest window or feature part holds.
TASK_CPUS = 1


@dataclass(frozen=True)
class Demand:
    """A job's CPU bundles: ``bundles`` placed together (all or nothing), then ``slots``
    trial slots of ``TASK_CPUS`` each, placed one by one and preemptible."""

    bundles: tuple[int, ...]
    slots: int = 0
    #: Whether the bundles go on different nodes where they can (data-parallel workers).
    spread: bool = False

    def __post_init__(self) -> None:
        if not self.bundles or min(self.bundles) < 1 or self.slots < 0:
            raise ValueError(f"a demand needs bundles of 1+ CPUs; got {self}")

    @property
    def cpus(self) -> int:
        """Every CPU the job holds at once."""
        return sum(self.bundles) + self.slots * TASK_CPUS

    @property
    def largest(self) -> int:
        """The CPUs of its largest bundle: what one node must hold."""
        return max(self.bundles)

    def every_bundle(self) -> list[int]:
        """The CPUs of each bundle, trial slots included."""
        return [*self.bundles, *[TASK_CPUS] * self.slots]

    def public(self) -> dict[str, Any]:
        """As the API shows it (``resources`` of a job)."""
        return {
            "cpus": self.cpus,
            "bundles": [{"CPU": cpus} for cpus in self.bundles],
            "trial_slots": self.slots,
            "strategy": "SPREAD" if self.spread else "PACK",
        }


def demand_of(config: TrainingConfig) -> Demand:
    """The bundles ``config`` holds at once; its defaults must be resolved
    (``TrainingConfig.resolved_for``): a config's demand never depends on the cluster."""
    width = config.n_workers or 1
    windows = (config.backtest.workers or 1) if config.backtest is not None else 0
    if config.distributed is not None:
        workers = (config.train_cpus,) * config.distributed.workers
        return Demand(workers + (TASK_CPUS,) * windows, spread=True)
    if config.enable_hpo:  # trials run in the window bundles too while the search runs
        trials_at_once = min(width, config.n_trials)  # a wider search leaves slots idle
        return Demand((TASK_CPUS,) * (1 + windows), slots=max(0, trials_at_once - 1 - windows))
    if config.per_series:
        return Demand((TASK_CPUS,) * width)
    return Demand((config.train_cpus,) + (TASK_CPUS,) * windows)
