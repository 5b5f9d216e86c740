"""The prediction deployment's model cache is bounded by bytes: the least recently used
models go first, a model larger than the bound is served but not kept, and a model's size
is its files' (its series' subdirectories too)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.models.artifacts import artifact_bytes
from pipeline.storage import Location
from serve_app.model_cache import ModelCache


def test_the_least_recently_used_models_are_dropped_past_the_byte_bound() -> None:
    sizes = {"a": 40, "b": 30, "c": 50, "huge": 101}
    loads: list[str] = []

    def load(key: str) -> tuple[str, int]:
        loads.append(key)
        return f"model {key}", sizes[key]

    cache = ModelCache(load, max_bytes=100)
    assert cache.get("a") == "model a"
    cache.get("b")
    cache.get("a")  # a is now the most recently used: b goes first
    cache.get("c")  # 40 + 30 + 50 > 100
    assert cache.info() == {"hits": 1, "misses": 3, "size": 2, "bytes": 90}
    cache.get("a")
    cache.get("b")  # reloaded; c (least recent) goes
    assert loads == ["a", "b", "c", "b"]
    assert cache.info()["bytes"] == 70
    assert cache.get("huge") == "model huge"  # served, not kept: it would evict everything
    assert cache.info() == {"hits": 2, "misses": 5, "size": 2, "bytes": 70}


def test_a_models_size_counts_every_file_of_its_directory(tmp_path: Path) -> None:
    (tmp_path / "series-00000").mkdir()
    (tmp_path / "model.txt").write_bytes(b"x" * 1000)
    (tmp_path / "series-00000" / "model.txt").write_bytes(b"y" * 2500)
    assert artifact_bytes(Location(str(tmp_path))) == 3500


def test_requests_missing_one_model_together_wait_for_one_load() -> None:
    """Each had loaded its own copy: several copies of a large model at once, past the
    bound, and every replica thread busy loading."""
    started, release = threading.Event(), threading.Event()
    loads: list[str] = []

    def load(key: str) -> tuple[str, int]:
        loads.append(key)
        started.set()
        release.wait(5)
        return f"model {key}", 10

    cache = ModelCache(load, max_bytes=100)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(cache.get, "a")
        assert started.wait(5)
        others = [pool.submit(cache.get, "a") for _ in range(7)]
        time.sleep(0.05)  # the others reach the cache while the first loads
        release.set()
        assert {f.result(5) for f in [first, *others]} == {"model a"}
    assert loads == ["a"]


def test_a_failed_load_fails_its_waiters_and_is_tried_again() -> None:
    started, release = threading.Event(), threading.Event()
    attempts: list[int] = []

    def load(key: str) -> tuple[str, int]:
        attempts.append(1)
        if len(attempts) == 1:
            started.set()
            release.wait(5)
            raise OSError("the artifact store is down")
        return "model", 1

    cache = ModelCache(load, max_bytes=100)
    with ThreadPoolExecutor(2) as pool:
        loading = pool.submit(cache.get, "a")
        assert started.wait(5)
        waiting = pool.submit(cache.get, "a")
        time.sleep(0.05)  # the waiter reaches the cache while the load runs
        release.set()
        for call in (loading, waiting):
            with pytest.raises(OSError, match="down"):
                call.result(5)
    assert len(attempts) == 1, "the waiter shared the failed load"
    assert cache.get("a") == "model"
