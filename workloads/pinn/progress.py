"""Training progress on the main rank: a rich bar on a terminal, a log line every so often elsewhere.

A Batch or SageMaker container's stderr is a log stream, not a terminal: a live bar draws only
when it stops, so a multi-hour run would log nothing until it ended. There, one plain line is
written every ``MLHPC_PROGRESS_INTERVAL_S`` seconds (default 30) and at the last step.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainingBar:
    """Show training progress; silent when disabled (other ranks, or --progress false)."""

    def __init__(
        self,
        *,
        total: int,
        start: int,
        enabled: bool,
        title: str,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled, self.total, self.title = enabled, total, title
        self._stream = stream or sys.stderr
        self._clock, self._started = clock, clock()
        self._last_line = self._started
        self._interval_s = float(os.environ.get("MLHPC_PROGRESS_INTERVAL_S", "30"))
        self._progress: Progress | None = None
        self._lines = enabled and not self._stream.isatty()
        if enabled and not self._lines:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  error {task.fields[error]}  {task.fields[phase]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                refresh_per_second=4,
            )
            self._task = self._progress.add_task(
                title, total=total, completed=start, loss="-", error="-", phase=""
            )

    def __enter__(self) -> TrainingBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, *, step: int, loss: float, error: float | None, phase: str) -> None:
        """Move the bar to step and show the latest loss and error."""
        if self._lines:
            now = self._clock()
            if now - self._last_line >= self._interval_s or step >= self.total:
                self._last_line = now
                shown = f"  error {error:.3e}" if error is not None else ""
                self._stream.write(
                    f"{self.title}: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)  "
                    f"loss {loss:.3e}{shown}  {phase}  {now - self._started:.0f} s\n"
                )
                self._stream.flush()
            return
        if self._progress is None:
            return
        # Typed as rich types **fields (Any), so mypy does not bind the dict to update()'s named options.
        fields: dict[str, Any] = {"loss": f"{loss:.3e}", "phase": phase}
        if error is not None:
            fields["error"] = f"{error:.3e}"
        self._progress.update(self._task, completed=step, **fields)
