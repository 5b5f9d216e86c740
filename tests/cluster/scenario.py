"""A cluster scenario run in a subprocess of its own (it needs a Ray of its own): the
module prints one JSON object of observations as its last line, the tests assert on it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def observe(module: str, timeout: float) -> dict[str, Any]:
    """Run ``python -m module``; its observations, or a failure with its stderr's tail."""
    result = subprocess.run(
        [sys.executable, "-m", module],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    observations: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return observations
