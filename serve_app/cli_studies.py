"""``trainctl studies``: an HPO job's Optuna study in optuna-dashboard."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from pipeline.search.hpo import journal_storage
from pipeline.settings import PipelineSettings
from serve_app.cli_http import console

studies_app = typer.Typer(help="HPO studies: open one in optuna-dashboard.")


def study_journal(data_dir: Path, job_id: str) -> Path:
    """Where an HPO job's study journal lives under the service's data directory."""
    return PipelineSettings(data_dir=data_dir).studies_root / f"{job_id}.journal"


@studies_app.command("open")
def studies_open(
    job_id: str,
    data_dir: Annotated[
        Path | None, typer.Option(help="The service's data directory (TRAINING_DATA_DIR).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address the dashboard binds to.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the dashboard.")] = 8080,
) -> None:
    """Serve the job's study with optuna-dashboard until Ctrl-C (on the machine that holds
    the service's data directory)."""
    journal = study_journal(data_dir or PipelineSettings().data_dir, job_id)
    if not journal.is_file():
        console.print(f"[red]error[/red] no study for job {job_id} at {journal}; is it an HPO job?")
        raise typer.Exit(code=1)
    if importlib.util.find_spec("optuna_dashboard") is None:
        console.print(
            "optuna-dashboard is not installed: pip install optuna-dashboard, then run\n"
            f"  optuna-dashboard {journal}"
        )
        raise typer.Exit(code=1)
    from optuna_dashboard import run_server

    console.print(f"Study {job_id}: http://{host}:{port}/dashboard (Ctrl-C stops)")
    run_server(journal_storage(journal), host=host, port=port)
