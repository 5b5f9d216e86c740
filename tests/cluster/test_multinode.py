"""The service on a head plus two worker nodes: work spreads over the nodes, a stage whose
node dies is retried on a surviving one, and without retries the job fails naming the node.

The scenario runs in a subprocess because it needs a Ray cluster of its own; this test
only reads what it observed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.scenario import observe

SCENARIO_TIMEOUT_SECONDS = 600
#: The scenario runs in the module's fixture: the first test's timeout must cover it.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(SCENARIO_TIMEOUT_SECONDS + 60)]


@pytest.fixture(scope="module")
def observed() -> dict[str, Any]:
    return observe("tests.cluster.multinode", SCENARIO_TIMEOUT_SECONDS)


def test_jobs_spread_over_the_worker_nodes(observed: dict[str, Any]) -> None:
    spread = observed["spread"]
    assert spread["statuses"] == ["completed"] * 4, spread["errors"]
    assert len(spread["nodes"]) == 2


def test_worker_nodes_read_features_and_write_models_through_object_storage(
    observed: dict[str, Any],
) -> None:
    storage = observed["storage"]
    assert len(storage["models"]) == 4, "one loadable model per job in the bucket"
    nodes = set(storage["read_on"]) | set(storage["written_on"])
    assert storage["head"] not in nodes
    assert len(nodes) == 2, "both worker nodes used the bucket"


def test_a_stage_on_a_lost_node_is_retried_on_a_surviving_one(observed: dict[str, Any]) -> None:
    retried = observed["retried"]
    assert retried["status"] == "completed", retried["error"]
    assert retried["killed"] in retried["train_nodes"]
    assert len(set(retried["train_nodes"])) == 2, "the retry ran on another node"


def test_without_retries_the_job_fails_naming_the_lost_node(observed: dict[str, Any]) -> None:
    lost = observed["lost"]
    assert lost["status"] == "failed"
    assert lost["killed"] in lost["error"]
    assert "lost its worker node in each of 1 attempt(s)" in lost["error"]
