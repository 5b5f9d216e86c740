"""Where a job's tasks run: the bundles the orchestrator reserved for it.

A ``Placement`` is a job's reservation as its tasks see it (``pipeline.resources`` has
the layout): the stages run in its first bundle, fan-out tasks take a CPU of any bundle
through a ``SlotPool``, and Ray Train's workers place their own placement group on the
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
class Slot:
    """One reserved bundle: its placement group, its index there and its CPUs; a slot
    of no group stands for CPUs anywhere in the cluster."""

    group: PlacementGroup | None
    bundle: int
    cpus: int

    def options(self, cpus: float) -> dict[str, Any]:
        """Ray task options that run a task holding ``cpus`` of this bundle."""
        if self.group is None:
            return {"num_cpus": cpus}
        strategy = PlacementGroupSchedulingStrategy(
            self.group,
            placement_group_bundle_index=self.bundle,
            placement_group_capture_child_tasks=False,
        )
        return {"num_cpus": cpus, "scheduling_strategy": strategy}

    @property
    def key(self) -> tuple[str, int]:
        """What tells two slots apart (the group's id and the bundle)."""
        return ("" if self.group is None else self.group.id.hex(), self.bundle)


@dataclass(frozen=True)
class Placement:
    """A job's gang bundles, the first one its stages' (``stage``)."""

    bundles: tuple[Slot, ...]

    @classmethod
    def anywhere(cls, cpus: int | None = None) -> Placement:
        """No reservation: one slot of ``cpus`` (default: the cluster's) with no group."""
        total = cpus or int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        return cls((Slot(None, 0, max(1, total)),))

    @property
    def reserved(self) -> bool:
        return self.bundles[0].group is not None

    @property
    def stage(self) -> Slot:
        return self.bundles[0]

    def stage_options(self, cpus: float) -> dict[str, Any]:
        """Options of a stage task holding ``cpus`` (0 for a coordinator)."""
        return self.stage.options(cpus)

    def workers(self, *, beside_stages: bool = False) -> list[Slot]:
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


class SlotPool:
    """The free CPUs of some slots: one task per CPU, each in a bundle with one free."""

    def __init__(self, slots: Sequence[Slot], cpus_per_task: int = 1) -> None:
        self._cpus_per_task = cpus_per_task
        self._free: dict[tuple[str, int], int] = {}
        self._slots: dict[tuple[str, int], Slot] = {}
        self.update(slots)

    def update(self, slots: Sequence[Slot]) -> None:
        """Take the slots granted now: new ones join with every CPU free; ones no longer
        granted leave (their tasks were taken back with them)."""
        busy = {key: self._slots[key].cpus - free for key, free in self._free.items()}
        self._slots = {slot.key: slot for slot in slots}
        self._free = {key: slot.cpus - busy.get(key, 0) for key, slot in self._slots.items()}

    @property
    def capacity(self) -> int:
        """Tasks that may run at once in the slots."""
        return sum(slot.cpus // self._cpus_per_task for slot in self._slots.values())

    def granted(self, slot: Slot) -> bool:
        return slot.key in self._slots

    def acquire(self) -> Slot | None:
        """A slot with a CPU free for one more task (the fullest first, so tasks pack),
        or None."""
        open_ = [k for k, free in self._free.items() if free >= self._cpus_per_task]
        if not open_:
            return None
        key = min(open_, key=lambda k: (self._free[k], k))
        self._free[key] -= self._cpus_per_task
        return self._slots[key]

    def release(self, slot: Slot) -> None:
        if slot.key in self._free:
            self._free[slot.key] += self._cpus_per_task
