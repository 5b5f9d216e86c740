"""Small modules with one concept each (issue 39's bounds): no module of the service over
400 lines, no room of ``pipeline/`` over 1,600."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("serve_app", "actors", "pipeline", "db", "domain")
MODULE_LINES = 400
ROOM_LINES = 1600


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_is_over_400_lines() -> None:
    modules = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    assert len(modules) > 100
    over = {str(p.relative_to(ROOT)): lines(p) for p in modules if lines(p) > MODULE_LINES}
    assert not over, over


def test_no_room_of_the_pipeline_is_over_1600_lines() -> None:
    rooms = [path for path in (ROOT / "pipeline").iterdir() if path.is_dir()]
    sizes = {room.name: sum(lines(p) for p in room.rglob("*.py")) for room in rooms}
    assert sizes["training"] > 1000
    over = {name: size for name, size in sizes.items() if size > ROOM_LINES}
    assert not over, over
