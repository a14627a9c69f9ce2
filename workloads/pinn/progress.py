"""A rich progress bar showing the step, the loss and the current error (main rank only)."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

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

    def __init__(self, *, total: int, start: int, enabled: bool, title: str) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  error {task.fields[error]}  {task.fields[phase]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
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
        if self._progress is None:
            return
        # Typed as rich types **fields (Any), so mypy does not bind the dict to update()'s named options.
        fields: dict[str, Any] = {"loss": f"{loss:.3e}", "phase": phase}
        if error is not None:
            fields["error"] = f"{error:.3e}"
        self._progress.update(self._task, completed=step, **fields)
