"""Where a job's tasks run: the bundles the orchestrator reserved for it.

A ``Placement`` is a job's reservation as its tasks see it (``pipeline.resources`` has
the layout): the stages run in its first bundle, fan-out tasks take a CPU of any bundle
through a ``BundlePool``, and Ray Train's workers place their own placement group on the
job's CPUs through ``nested_resource``. A run with no service (tests, benchmarks) gets
``Placement.anywhere()``: tasks then go wherever Ray puts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@dataclass(frozen=True)
class Bundle:
    """One reserved bundle: its placement group, its index there and its CPUs; a bundle
    of no group stands for CPUs anywhere in the cluster."""

    group: PlacementGroup | None
    index: int
    cpus: int

    def options(self, cpus: float) -> dict[str, Any]:
        """Ray task options that run a task holding ``cpus`` of this bundle."""
        if self.group is None:
            return {"num_cpus": cpus}
        strategy = PlacementGroupSchedulingStrategy(
            self.group,
            placement_group_bundle_index=self.index,
            placement_group_capture_child_tasks=False,
        )
        return {"num_cpus": cpus, "scheduling_strategy": strategy}

    @property
    def key(self) -> tuple[str, int]:
        """What tells two bundles apart (the group's id and the index)."""
        return ("" if self.group is None else self.group.id.hex(), self.index)


@dataclass(frozen=True)
class Placement:
    """A job's gang bundles, the first one its stages' (``stage``)."""

    bundles: tuple[Bundle, ...]

    @classmethod
    def anywhere(cls, cpus: int | None = None) -> Placement:
        """No reservation: one bundle of ``cpus`` (default: the cluster's) in no group."""
        total = cpus or int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        return cls((Bundle(None, 0, max(1, total)),))

    @property
    def reserved(self) -> bool:
        return self.bundles[0].group is not None

    @property
    def stage(self) -> Bundle:
        return self.bundles[0]

    def stage_options(self, cpus: float) -> dict[str, Any]:
        """Options of a stage task holding ``cpus`` (0 for a coordinator)."""
        return self.stage.options(cpus)

    def workers(self, *, beside_stages: bool = False) -> list[Bundle]:
        """The bundles fan-out tasks run in; ``beside_stages``: leave the stage bundle out
        (where a stage runs beside them), unless it is the only one."""
        if beside_stages and len(self.bundles) > 1:
            return list(self.bundles[1:])
        return list(self.bundles)

    @property
    def nested_resource(self) -> str | None:
        """The resource a placement group made inside this reservation asks for (Ray
        Train's workers): Ray names a group's CPUs ``CPU_group_<id>`` on the nodes that
        hold its bundles; None without a reservation."""
        group = self.stage.group
        return None if group is None else f"CPU_group_{group.id.hex()}"


class BundlePool:
    """The CPUs of some bundles as tasks take them: one task per CPU, in a bundle with a
    CPU free. The bundles granted may change (a search's trial slots come and go); a
    task's CPU stays counted until it is released, whatever was granted meanwhile."""

    def __init__(self, bundles: Sequence[Bundle], cpus_per_task: int = 1) -> None:
        self._cpus_per_task = cpus_per_task
        self._granted: dict[tuple[str, int], Bundle] = {}
        self._busy: dict[tuple[str, int], int] = {}
        self.update(bundles)

    def update(self, bundles: Sequence[Bundle]) -> None:
        """Take the bundles granted now (a bundle taken back goes, its tasks with it)."""
        self._granted = {bundle.key: bundle for bundle in bundles}

    @property
    def capacity(self) -> int:
        """Tasks that may run at once in the granted bundles."""
        return sum(b.cpus // self._cpus_per_task for b in self._granted.values())

    def granted(self, bundle: Bundle) -> bool:
        return bundle.key in self._granted

    def acquire(self) -> Bundle | None:
        """A granted bundle with a CPU free for one more task (the fullest first, so tasks
        pack), or None."""
        free = {key: bundle.cpus - self._busy.get(key, 0) for key, bundle in self._granted.items()}
        open_ = [key for key, cpus in free.items() if cpus >= self._cpus_per_task]
        if not open_:
            return None
        key = min(open_, key=lambda k: (free[k], k))
        self._busy[key] = self._busy.get(key, 0) + self._cpus_per_task
        return self._granted[key]

    def release(self, bundle: Bundle) -> None:
        busy = self._busy.get(bundle.key, 0) - self._cpus_per_task
        if busy > 0:
            self._busy[bundle.key] = busy
        else:
            self._busy.pop(bundle.key, None)
