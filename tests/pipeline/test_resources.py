"""A job's demand follows from its config alone, its fan-out widths fixed at submit."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import TrainingConfig
from pipeline.resources import Demand, demand_of


def config(**fields: Any) -> TrainingConfig:
    return TrainingConfig.model_validate({"feature_set": "s", "target_variable": "y", **fields})


@pytest.mark.parametrize(
    ("fields", "demand"),
    [
        ({}, Demand((1,))),
        ({"n_workers": 4}, Demand((4,))),
        ({"enable_hpo": True, "n_workers": 4}, Demand((1,), slots=3)),
        ({"enable_hpo": True, "n_workers": 8, "n_trials": 3}, Demand((1,), slots=2)),
        ({"per_series": True, "n_workers": 3}, Demand((1, 1, 1))),
        ({"backtest": {"windows": 5, "workers": 2}}, Demand((1, 1, 1))),
        ({"n_workers": 2, "backtest": {"windows": 5, "workers": 2}}, Demand((2, 1, 1))),
        ({"n_workers": 2, "distributed": {"workers": 3}}, Demand((2, 2, 2), spread=True)),
        (
            {"distributed": {"workers": 2}, "backtest": {"windows": 3, "workers": 2}},
            Demand((1, 1, 1, 1), spread=True),
        ),
        (
            {"enable_hpo": True, "n_workers": 2, "backtest": {"windows": 2, "workers": 1}},
            Demand((1, 1)),
        ),
        (
            {"enable_hpo": True, "n_workers": 4, "backtest": {"windows": 2, "workers": 1}},
            Demand((1, 1), slots=2),
        ),
    ],
    ids=[
        "plain",
        "threads",
        "search",
        "search-wider-than-its-trials",
        "per-series",
        "backtest",
        "both",
        "data-parallel",
        "data-parallel-and-backtest",
        "search-and-backtest",
        "wider-search-and-backtest",
    ],
)
def test_a_configs_demand(fields: dict[str, Any], demand: Demand) -> None:
    assert demand_of(config(**fields)) == demand


def test_a_demand_counts_every_cpu_and_names_its_largest_bundle() -> None:
    demand = Demand((2, 1), slots=3)
    assert (demand.cpus, demand.largest) == (6, 2)
    assert demand.every_bundle() == [2, 1, 1, 1, 1]
    assert demand.public() == {
        "cpus": 6,
        "bundles": [{"CPU": 2}, {"CPU": 1}],
        "trial_slots": 3,
        "strategy": "PACK",
    }
    with pytest.raises(ValueError, match="bundles of 1"):
        Demand(())


def test_widths_left_to_the_service_are_fixed_from_the_clusters_cpus() -> None:
    assert config(enable_hpo=True, n_trials=20).resolved_for(6).n_workers == 6
    assert config(enable_hpo=True, n_trials=4).resolved_for(6).n_workers == 4
    assert config(per_series=True).resolved_for(3).n_workers == 3
    cases: list[tuple[dict[str, Any], int, int]] = [
        ({"backtest": {"windows": 4}}, 8, 4),
        ({"backtest": {"windows": 4}}, 2, 1),  # beside the stage bundle: the job fits 2
        ({"n_workers": 2, "backtest": {"windows": 4}}, 4, 2),
        ({"enable_hpo": True, "backtest": {"windows": 4}}, 3, 2),
        ({"distributed": {"workers": 2}, "backtest": {"windows": 4}}, 4, 2),
    ]
    for fields, cpus, windows in cases:
        resolved = config(**fields).resolved_for(cpus)
        assert resolved.backtest is not None
        assert resolved.backtest.workers == windows
        assert demand_of(resolved).cpus <= cpus
    assert config().resolved_for(0).n_workers is None, "a plain job's CPUs stay the user's"
    assert config(enable_hpo=True).resolved_for(0).n_workers == 1, "no CPUs up yet: one"
    chosen = config(enable_hpo=True, n_workers=2)
    assert chosen.resolved_for(6) is chosen
