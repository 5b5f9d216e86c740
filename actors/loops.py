"""The orchestrator's background loops: a step run every so many seconds, for ever."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("actors.orchestrator")


def every(
    seconds: float,
    step: Callable[[], Awaitable[object]],
    what: str,
    *,
    wake: asyncio.Event | None = None,
    after: asyncio.Event | None = None,
    delay_first: bool = False,
) -> asyncio.Task[None]:
    """Run ``step`` every ``seconds`` (sooner when ``wake`` is set), once ``after`` is
    set; a failure is logged and never ends the loop."""

    async def forever() -> None:
        if after is not None:
            await after.wait()
        if delay_first:
            await asyncio.sleep(seconds)
        while True:
            if wake is not None:
                wake.clear()
            try:
                await step()
            except Exception:
                logger.exception("%s failed; trying again", what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((wake or asyncio.Event()).wait(), seconds)

    return asyncio.get_running_loop().create_task(forever(), name=what)
