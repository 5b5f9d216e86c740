"""Appending a day to a large feature set, against uploading the set again; and reading a
version after a year of daily appends, against the same rows compacted.

A set of ``--meters`` synthetic hourly meters over two years (100 meters: 1,752,000 rows;
``bench/scale_data.py``'s generator, with a temperature covariate) is imported from a
Parquet file. Then, side by side ``--repeats`` times: a full re-upload of the set and one
more day (``FeatureStore.import_file`` of a Parquet file) and the append of one day's
rows (2,400, a Parquet file in memory as an upload's body: ``FeatureStore.append``).
Then ``--days`` daily appends in all, each followed by the tiered compaction the API runs
after an append (``FeatureStore.compact``, timed apart). The current version after the
last append is read (``load`` of every row, ``load`` of the last 90 days, ``keys``) beside
the same rows fully compacted (``compact(full=True)``), alternately, and with
``--uncompacted`` beside a version that appended the same days with no compaction.

Usage: ``python -m bench.append [--meters 100] [--days 365] [--repeats 3] [--reads 7]
[--uncompacted]``.
Goals: an append at most 2 s and 5 % of the re-upload; the read after the appends at most
1.2x the compacted one's.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from bench.scale_data import meters_block
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

BASE_DAYS = 2 * 365


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def import_set(store: FeatureStore, name: str, path: Path) -> Any:
    return store.import_file(
        name, path, timestamp_column="timestamp", target_column="load_kw", series_column="meter"
    )


def append_day(store: FeatureStore, name: str, day: bytes) -> Any:
    return store.append(name, io.BytesIO(day))


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def append_days(
    store: FeatureStore, name: str, days: list[bytes], compact: bool
) -> tuple[list[float], list[float]]:
    """Append each day; returns the appends' and the compactions' seconds."""
    appends, compactions = [], []
    for day in days:
        appends.append(timed(partial(append_day, store, name, day))[0])
        if compact:
            compactions.append(timed(lambda: store.compact(name))[0])
    return appends, compactions


def reads(store: FeatureStore, name: str, version: str, start: pd.Timestamp) -> dict[str, Any]:
    return {
        "load, every row": lambda: store.load(name, version=version),
        "load, last 90 days": lambda: store.load(name, version=version, start=start),
        "keys": lambda: store.keys(name, version=version),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3, help="re-uploads beside appends")
    parser.add_argument("--reads", type=int, default=7, help="reads of each version")
    parser.add_argument("--uncompacted", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-append-"))
    try:
        run(root, args.meters, args.days, args.repeats, args.reads, args.uncompacted)
    finally:
        shutil.rmtree(root)


def run(
    root: Path, meters: int, days: int, repeats: int, reads_each: int, uncompacted: bool
) -> None:
    data = meters_block(range(meters), hours=(BASE_DAYS + days) * 24)
    day_of = (data["timestamp"] - data["timestamp"].min()).dt.days
    base = data[day_of < BASE_DAYS]
    appended = [parquet(data[day_of == BASE_DAYS + d]) for d in range(days)]
    full = root / "full.parquet"
    data[day_of <= BASE_DAYS].to_parquet(full, index=False)
    base_file = root / "base.parquet"
    base.to_parquet(base_file, index=False)
    del data
    store = FeatureStore(Location(str(root / "features")))
    day_rows = len(pd.read_parquet(io.BytesIO(appended[0])))
    print(f"{len(base):,} rows ({meters} meters x {BASE_DAYS} days hourly); a day: {day_rows:,}")

    imported = timed(lambda: import_set(store, "meters", base_file))[0]
    if uncompacted:
        import_set(store, "raw", base_file)
    uploads, first_appends = [], []
    for day in appended[:repeats]:  # side by side
        uploads.append(timed(lambda: import_set(store, "reupload", full))[0])
        first_appends.append(timed(partial(append_day, store, "meters", day))[0])
        store.compact("meters")
    later, compactions = append_days(store, "meters", appended[repeats:], compact=True)
    upload, append = statistics.median(uploads), statistics.median(first_appends)
    every = first_appends + later
    print(f"import of the set: {imported:.2f} s")
    print(
        f"full re-upload (median of {repeats}): {upload:.2f} s; a day's append: "
        f"{append:.3f} s = {append / upload:.1%} of it"
    )
    print(
        f"{len(every)} appends: median {statistics.median(every):.3f} s, max {max(every):.3f} s;"
        f" tiered compactions after them: {sum(compactions):.1f} s in all, "
        f"max {max(compactions, default=0):.2f} s"
    )

    tiered = store.schema("meters")
    seconds, compacted = timed(lambda: store.compact("meters", full=True))
    print(
        f"full compaction: {seconds:.2f} s; parts: tiered {len(tiered.data_parts())}, "
        f"compacted {len(compacted.data_parts())}; rows {tiered.rows:,} = {compacted.rows:,}"
    )
    versions = {
        "tiered": ("meters", tiered.pinned_version),
        "compacted": ("meters", compacted.pinned_version),
    }
    if uncompacted:
        raw_appends, _ = append_days(store, "raw", appended, compact=False)
        raw = store.schema("raw")
        versions["uncompacted"] = ("raw", raw.pinned_version)
        print(
            f"uncompacted: {len(raw.data_parts())} parts; its appends: median "
            f"{statistics.median(raw_appends):.3f} s, the last {raw_appends[-1]:.3f} s"
        )
    start = pd.Timestamp(tiered.end) - pd.Timedelta(days=90)
    timings: dict[str, dict[str, list[float]]] = {}
    for _ in range(reads_each):
        for label, (name, version) in versions.items():
            for what, read in reads(store, name, version, start).items():
                timings.setdefault(what, {}).setdefault(label, []).append(timed(read)[0])
    print(f"reads (median of {reads_each}):")
    for what, by_version in timings.items():
        medians = {label: statistics.median(s) for label, s in by_version.items()}
        ratios = ", ".join(
            f"{label} {m:.3f} s ({m / medians['compacted']:.2f}x)" for label, m in medians.items()
        )
        print(f"  {what}: {ratios}")


if __name__ == "__main__":
    main()
