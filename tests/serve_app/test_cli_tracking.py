"""``trainctl experiments compare`` says which experiment won over the validation windows."""

from __future__ import annotations

from rich.console import Console

from serve_app.cli_tracking import window_table


def test_the_window_table_names_the_winner_and_each_gain() -> None:
    windows = {
        "metric": "window_mae",
        "baseline": "e0",
        "winner": "e2",
        "rows": [
            {"experiment_id": "e1", "gain": 0.012, "margin": 0.034, "won": False},
            {"experiment_id": "e2", "gain": 0.081, "margin": 0.025, "won": True},
            {"experiment_id": "e3", "gain": None, "margin": None, "won": False},
        ],
    }
    names = {"e0": "trial 0", "e1": "trial 1", "e2": "trial 2", "e3": "job"}
    console = Console(width=120, record=True)
    console.print(window_table(windows, names))
    text = console.export_text()
    assert "trial 2 won" in text
    assert "gain over trial 0" in text
    assert "+8.10 %" in text
    assert "2.50 %" in text
    assert "not paired" in text
