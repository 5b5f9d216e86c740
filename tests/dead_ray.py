"""What a crashed Ray leaves behind: its address in ``ray_current_cluster``, nothing
listening there. ``ray.init()`` without an address would try to join it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.network import free_port


@contextmanager
def dead_cluster_tmpdir() -> Iterator[Path]:
    """A ``RAY_TMPDIR`` whose address file names a cluster nobody runs, removed afterwards
    with what Ray wrote there. Short, under the system's temp directory: Ray's socket paths
    must fit in 107 characters."""
    root = Path(tempfile.mkdtemp(prefix="ray-dead-"))
    try:
        (root / "ray").mkdir()
        (root / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
