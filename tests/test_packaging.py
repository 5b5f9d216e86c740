"""Every package of the service is in the distribution (pyproject's explicit list): a
package left out imports in a checkout but not where the service is installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
TOP_LEVEL = ("domain", "db", "actors", "pipeline", "serve_app")


def test_every_package_is_listed_for_the_distribution() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed
