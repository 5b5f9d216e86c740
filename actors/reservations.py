"""Reservations: the placement groups that hold each running job's (and batch forecast's)
CPUs, kept in step with the ledger admission reads.

A holder's demand (``pipeline.resources.Demand``) becomes one placement group of its
bundles, placed all or nothing (the *gang*), and one group per trial slot. Each group is
booked in the ``Ledger`` when it is made (on the nodes best fit predicts) and moved to
the nodes Ray chose once it is placed; a holder starts once its gang is placed, and its
trial slots join as Ray places them. Groups
are named ``<prefix><holder>:<n>`` so that an orchestrator can remove what an earlier
incarnation left. ``PlacementGroups`` is the port to Ray: ``RayPlacementGroups`` in the
service, a test's own in unit tests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from actors.ledger import Group, Ledger, Nodes
from pipeline.placement import Bundle, Placement
from pipeline.resources import TASK_CPUS, Demand

logger = logging.getLogger(__name__)


class PlacementGroups(Protocol):
    """Makes, awaits and removes placement groups."""

    def create(self, name: str, bundles: Sequence[int], spread: bool) -> Any:
        """Ask for a group of ``bundles`` (CPUs each); returns its handle at once."""
        ...

    async def placed(self, handle: Any) -> Nodes:
        """Wait until every bundle is placed; the node of each."""
        ...

    def where(self, handle: Any, bundles: int) -> Nodes:
        """The node each bundle is on now ("" for one Ray has yet to place again)."""
        ...

    def remove(self, handle: Any) -> None:
        """Release the group's CPUs; tasks still running in it are killed."""
        ...

    def slot(self, handle: Any, bundle: int, cpus: int) -> Bundle:
        """The pipeline's view of one bundle."""
        ...

    def remove_named(self, prefix: str) -> int:
        """Remove every group whose name starts with ``prefix``; how many."""
        ...


class Reservations:
    """The placement groups of every holder, booked in ``ledger``."""

    def __init__(self, ledger: Ledger, groups: PlacementGroups, prefix: str) -> None:
        self.ledger = ledger
        self._groups = groups
        self._prefix = prefix
        self._handles: dict[str, Any] = {}
        self._placed: set[str] = set()
        self._numbers = itertools.count()
        #: Groups Ray failed to remove (the GCS unreachable), by name: they hold CPUs the
        #: ledger has freed until ``retry_removals`` removes them.
        self._unremoved: dict[str, Any] = {}

    def clear_stale(self) -> int:
        """Remove the groups an earlier orchestrator of this name left (at recovery)."""
        removed = self._groups.remove_named(self._prefix)
        if removed:
            logger.warning("removed %d placement groups an earlier orchestrator left", removed)
        return removed

    def book(self, holder: str, demand: Demand, nodes: Nodes) -> None:
        """Ask for ``demand``'s groups, booked on ``nodes`` (``Ledger.fit`` of
        ``demand.every_bundle()``) until Ray places them."""
        count = len(demand.bundles)
        self._make(holder, demand.bundles, nodes[:count], demand.spread, slot=False)
        for node in nodes[count:]:
            self._make(holder, (TASK_CPUS,), (node,), False, slot=True)

    def add_slot(self, holder: str, node: str) -> Group:
        """Ask for one more trial slot for ``holder``, booked on ``node``."""
        return self._make(holder, (TASK_CPUS,), (node,), False, slot=True)

    async def placed(self, holder: str) -> None:
        """Wait until the gang of ``holder`` is placed, and book where."""
        await asyncio.gather(*(self.place(g) for g in self.ledger.groups_of(holder) if not g.slot))

    async def place(self, group: Group) -> None:
        """Wait until ``group`` is placed, and book where (a group removed meanwhile is
        left alone)."""
        handle = self._handles.get(group.name)
        if handle is None:  # released meanwhile
            return
        nodes = await self._groups.placed(handle)
        if group.name in self._handles:
            self.ledger.placed(group.name, nodes)
            self._placed.add(group.name)

    def slots_to_place(self, holder: str) -> list[Group]:
        """The holder's trial slots Ray has yet to place."""
        return [g for g in self.ledger.slots_of(holder) if g.name not in self._placed]

    def displaced(self) -> bool:
        """Whether a placed group is booked on a node that left, or that Ray has yet to
        place again ("")."""
        return bool(self._displaced())

    def relocate(self) -> None:
        """Book again where Ray put the bundles of groups booked on nodes that left (Ray
        places them anew on alive nodes, some only later: asked again while any is)."""
        for name in self._displaced():
            group = self.ledger.group(name)
            assert group is not None
            nodes = self._groups.where(self._handles[name], len(group.bundles))
            self.ledger.placed(name, nodes)

    def _displaced(self) -> list[str]:
        alive = self.ledger.shape.nodes
        return [
            name
            for name in self._placed
            if (group := self.ledger.group(name)) is not None
            and not all(node in alive for node in group.nodes)
        ]

    def placement(self, holder: str) -> Placement:
        """The holder's bundles as its tasks see them."""
        (gang,) = [g for g in self.ledger.groups_of(holder) if not g.slot]
        handle = self._handles[gang.name]
        return Placement(
            tuple(self._groups.slot(handle, i, cpus) for i, cpus in enumerate(gang.bundles))
        )

    def trial_slots(self, holder: str) -> list[Bundle]:
        """The holder's placed trial slots."""
        return [
            self._groups.slot(self._handles[g.name], 0, g.cpus)
            for g in self.ledger.slots_of(holder)
            if g.name in self._placed
        ]

    def take_back(self, groups: Sequence[Group]) -> None:
        """Remove trial slots (their trials are killed; the search runs them again)."""
        for group in groups:
            self._remove(group.name)

    def release(self, holder: str) -> None:
        """Remove every group of ``holder``."""
        for group in self.ledger.groups_of(holder):
            self._remove(group.name)

    def _make(
        self, holder: str, bundles: tuple[int, ...], nodes: Nodes, spread: bool, slot: bool
    ) -> Group:
        name = f"{self._prefix}{holder}:{next(self._numbers)}"
        group = Group(name, holder, bundles, nodes, slot=slot)
        self._handles[name] = self._groups.create(name, bundles, spread)
        self.ledger.book(group)
        return group

    @property
    def unremoved(self) -> int:
        """Groups Ray failed to remove, still holding their CPUs."""
        return len(self._unremoved)

    def retry_removals(self) -> int:
        """Remove the groups Ray failed to remove before; how many are still left."""
        for name, handle in list(self._unremoved.items()):
            del self._unremoved[name]
            self._try_remove(name, handle)
        return len(self._unremoved)

    def _remove(self, name: str) -> None:
        self.ledger.drop(name)
        self._placed.discard(name)
        handle = self._handles.pop(name, None)
        if handle is not None:
            self._try_remove(name, handle)

    def _try_remove(self, name: str, handle: Any) -> None:
        """Never raises: a failed removal must not strand the holder's other groups, nor
        the work its caller does next (ending a job, admitting the rest of a pass)."""
        try:
            self._groups.remove(handle)
        except Exception:
            logger.warning("could not remove placement group %s; trying again", name, exc_info=True)
            self._unremoved[name] = handle


class RayPlacementGroups:
    """``PlacementGroups`` over Ray's placement group API."""

    def create(self, name: str, bundles: Sequence[int], spread: bool) -> Any:
        from ray.util.placement_group import placement_group

        return placement_group(
            [{"CPU": float(cpus)} for cpus in bundles],
            strategy="SPREAD" if spread else "PACK",
            name=name,
        )

    async def placed(self, handle: Any) -> Nodes:
        from ray.util.placement_group import placement_group_table

        await handle.ready()
        table = await asyncio.to_thread(placement_group_table, handle)
        where: dict[int, str] = table["bundles_to_node_id"]
        return tuple(where[index] for index in sorted(where))

    def remove(self, handle: Any) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(handle)

    def slot(self, handle: Any, bundle: int, cpus: int) -> Bundle:
        return Bundle(handle, bundle, cpus)

    def where(self, handle: Any, bundles: int) -> Nodes:
        from ray.util.placement_group import placement_group_table

        where: dict[int, str] = placement_group_table(handle).get("bundles_to_node_id") or {}
        return tuple(where.get(index, "") for index in range(bundles))

    def remove_named(self, prefix: str) -> int:
        from ray.util.placement_group import (
            get_placement_group,
            placement_group_table,
            remove_placement_group,
        )

        removed = 0
        for entry in placement_group_table().values():
            name = entry.get("name") or ""
            if name.startswith(prefix) and entry.get("state") != "REMOVED":
                remove_placement_group(get_placement_group(name))
                removed += 1
        return removed
