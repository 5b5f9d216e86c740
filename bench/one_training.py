"""One training run of the pipeline in this process: the entrypoint of a Ray Jobs API job."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from bench.workload import bench_context
from pipeline.graph.runner import run_in_process
from pipeline.settings import PipelineSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    saved, _ = run_in_process(
        bench_context(str(uuid.uuid4())), PipelineSettings(data_dir=args.data_dir)
    )
    print(f"trained {saved.version}: mae={saved.metrics['mae']:.3f}")


if __name__ == "__main__":
    main()
