"""The book of who holds which CPUs of which node: what admission reads.

Pure: the orchestrator tells it the cluster's nodes and every placement group it makes
or removes; it answers where a demand fits now (first fit, the largest bundles first),
and what would be free if some holders let go (``actors.dispatch`` decides with it). A
group is booked on the nodes first fit predicts for it until Ray
says where it went (``placed``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from actors.cluster import ClusterShape

#: Which node each bundle of a group goes on.
Nodes = tuple[str, ...]


@dataclass(frozen=True)
class Group:
    """One placement group of a holder (a job or a batch forecast)."""

    name: str
    holder: str
    bundles: tuple[int, ...]
    nodes: Nodes
    #: A trial slot: preemption may take it back.
    slot: bool = False
    #: Whether ``nodes`` are where Ray put it, not a prediction.
    placed: bool = False

    @property
    def cpus(self) -> int:
        return sum(self.bundles)


def best_fit(bundles: Sequence[int], free: Mapping[str, int], spread: bool = False) -> Nodes | None:
    """Nodes for ``bundles`` within the ``free`` CPUs of each node, or None: each bundle,
    the largest first, on the node with the least room that holds it, so large bundles
    keep finding whole nodes (``spread``: the most room, so bundles land apart)."""
    room = dict(free)
    nodes: list[str] = [""] * len(bundles)
    for index in sorted(range(len(bundles)), key=lambda i: -bundles[i]):
        fitting = [node for node, cpus in room.items() if cpus >= bundles[index]]
        if not fitting:
            return None
        pick = max if spread else min
        node = pick(fitting, key=lambda n: (room[n], n))
        room[node] -= bundles[index]
        nodes[index] = node
    return tuple(nodes)


class Ledger:
    def __init__(self, shape: ClusterShape) -> None:
        self._shape = shape
        self._groups: dict[str, Group] = {}

    @property
    def shape(self) -> ClusterShape:
        return self._shape

    def update(self, shape: ClusterShape) -> bool:
        """Take the cluster's nodes now; returns whether they changed. Groups on a node
        that left stay booked until their holders release them (their work was lost)."""
        changed = shape != self._shape
        self._shape = shape
        return changed

    # ------------------------------------------------------------------ reading

    def free(self, counting: Callable[[Group], bool] | None = None) -> dict[str, int]:
        """The CPUs of each alive node that no group holds; ``counting``: only the groups
        it accepts hold any (what would be free if the others let go)."""
        free = dict(self._shape.nodes)
        for group in self._groups.values():
            if counting is not None and not counting(group):
                continue
            for node, cpus in zip(group.nodes, group.bundles, strict=True):
                if node in free:
                    free[node] = max(0, free[node] - cpus)
        return free

    def fit(
        self, bundles: Sequence[int], spread: bool = False, free: Mapping[str, int] | None = None
    ) -> Nodes | None:
        """Where ``bundles`` fit in what is free now (or in ``free``), or None."""
        return best_fit(bundles, self.free() if free is None else free, spread)

    def fits_empty(self, bundles: Sequence[int], spread: bool = False) -> bool:
        """Whether ``bundles`` would fit the alive nodes with nothing held."""
        return best_fit(bundles, self._shape.nodes, spread) is not None

    @property
    def reserved(self) -> int:
        """CPUs every group holds."""
        return sum(group.cpus for group in self._groups.values())

    def held(self, holder: str) -> int:
        return sum(group.cpus for group in self.groups_of(holder))

    def group(self, name: str) -> Group | None:
        return self._groups.get(name)

    def groups_of(self, holder: str) -> list[Group]:
        return [group for group in self._groups.values() if group.holder == holder]

    def holders(self) -> dict[str, list[Group]]:
        """Each holder's groups."""
        held: dict[str, list[Group]] = {}
        for group in self._groups.values():
            held.setdefault(group.holder, []).append(group)
        return held

    def slots_of(self, holder: str) -> list[Group]:
        """A holder's trial slots, the newest last."""
        return [group for group in self.groups_of(holder) if group.slot]

    # ------------------------------------------------------------------ writing

    def book(self, group: Group) -> None:
        self._groups[group.name] = group

    def placed(self, name: str, nodes: Nodes) -> None:
        """Where Ray put a group's bundles (a group released meanwhile stays released)."""
        group = self._groups.get(name)
        if group is not None:
            self._groups[name] = replace(group, nodes=nodes, placed=True)

    def drop(self, name: str) -> Group | None:
        return self._groups.pop(name, None)
