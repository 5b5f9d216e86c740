"""The import contracts of pyproject.toml (``make lint`` runs them) hold on the code as it
is, and break on the wrong imports they exist to stop: a room of pipeline/ that imports
one above it, a shared contract that imports a room, the in-process runner importing Ray.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("domain", "db", "pipeline", "actors", "serve_app")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the service's packages and its import contracts."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_code_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("pipeline/scoring/intervals.py", "import pipeline.training.blend", "pipeline's rooms"),
        ("pipeline/features/build.py", "import pipeline.graph.launch", "pipeline's rooms"),
        ("pipeline/search/trials.py", "import pipeline.evaluation.evaluate", "pipeline's rooms"),
        ("pipeline/training/train.py", "import pipeline.distributed.ray_train", "pipeline's rooms"),
        ("pipeline/versions/schema.py", "import pipeline.store.feature_store", "pipeline's rooms"),
        ("pipeline/config.py", "import pipeline.features.build", "shared contracts"),
        ("pipeline/graph/runner.py", "import ray", "runner needs no Ray"),
        ("pipeline/training/train.py", "import actors.orchestrator", "Layers: domain"),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tree: Path, module: str, wrong_import: str, contract: str
) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout
