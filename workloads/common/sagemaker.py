"""The SageMaker bring-your-own-container training contract, for every workload at once.

SageMaker starts the image as ``<entrypoint> train`` with:

* hyperparameters in ``/opt/ml/input/config/hyperparameters.json`` (every value a string, decoded
  by :func:`mlhpc.invocation.from_hyperparameters`);
* input channels in ``/opt/ml/input/data/<channel>/``;
* ``/opt/ml/model/`` uploaded to S3 as model.tar.gz when the job ends;
* ``/opt/ml/checkpoints/`` synced to S3 when checkpointing is configured;
* on failure, the reason written to ``/opt/ml/output/failure`` (shown as the job's
  FailureReason) and a non-zero exit; we use 255.

The root ``/opt/ml`` can be moved with ``MLHPC_SAGEMAKER_ROOT`` (tests use a temp dir).
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlhpc import invocation
from mlhpc.spec import SpecError, WorkloadSpec

FAILURE_EXIT_CODE = 255


def root() -> Path:
    """Return the SageMaker container root (/opt/ml unless MLHPC_SAGEMAKER_ROOT says otherwise)."""
    return Path(os.environ.get("MLHPC_SAGEMAKER_ROOT", "/opt/ml"))


def channel_dir(name: str = invocation.TRAINING_CHANNEL) -> Path | None:
    """Return /opt/ml/input/data/<name> when SageMaker mounted that channel, else None."""
    path = root() / "input" / "data" / name
    return path if path.is_dir() else None


def training_argv(spec: WorkloadSpec, hyperparameters: dict[str, Any], extra: Sequence[str]) -> list[str]:
    """Return the entrypoint's argv for a training job: its hyperparameters, then /opt/ml's run options.

    Hyperparameters are decoded by the invocation codec (SageMaker's own keys dropped); ``$VARS``
    in them are expanded first, so a value can name a channel (``$SM_CHANNEL_TRAINING``).
    """
    base = root()
    expanded = {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in hyperparameters.items()}
    args = invocation.from_hyperparameters(spec, expanded)
    run = invocation.RunOptions(
        out=os.environ.get("SM_MODEL_DIR", str(base / "model")), checkpoint_dir=str(base / "checkpoints")
    )
    return [*invocation.argument_options(spec, args), *extra, *invocation.run_options(run)]


class _Tail(io.TextIOBase):
    """Pass writes through to a stream while keeping its last lines (the failure reason)."""

    def __init__(self, stream: Any, lines: int = 20) -> None:
        self.stream = stream
        self.lines: deque[str] = deque(maxlen=lines)

    def write(self, text: str) -> int:
        self.stream.write(text)
        self.lines.extend(line for line in text.splitlines() if line.strip())
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def run_training(spec: WorkloadSpec, runner: Callable[[list[str]], int], extra: Sequence[str]) -> int:
    """Run a workload under the SageMaker contract; return 0 or 255 (with /opt/ml/output/failure written)."""
    base = root()
    failure = base / "output" / "failure"
    try:
        config = base / "input" / "config" / "hyperparameters.json"
        hyperparameters = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
        if not isinstance(hyperparameters, dict):
            raise ValueError(f"{config} must hold a JSON object, found {type(hyperparameters).__name__}")
        for channel in (base / "input" / "data").glob("*"):
            os.environ.setdefault(f"SM_CHANNEL_{channel.name.upper()}", str(channel))
        argv = training_argv(spec, hyperparameters, extra)
    except SpecError as err:
        reason = f"error: {err}"
        code = 2
    except (OSError, ValueError) as err:
        reason = f"{spec.name}: cannot read the SageMaker job configuration: {err}"
        code = 1
    else:
        tail = _Tail(sys.stderr)
        previous, sys.stderr = sys.stderr, tail
        try:
            code = runner(argv)
        finally:
            sys.stderr = previous
        reason = "\n".join(tail.lines) or f"{spec.name} exited with code {code}"
    if code == 0:
        return 0
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason + "\n", encoding="utf-8")
    print(reason, file=sys.stderr)
    return FAILURE_EXIT_CODE
