"""Session-wide fixtures: one small local Ray cluster for every test that needs Ray."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray

from actors.settings import NAMESPACE


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    ray.init(
        num_cpus=2,
        namespace=NAMESPACE,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
    )
    yield
    ray.shutdown()
