"""The SageMaker bring-your-own-container training contract, for every workload at once.

SageMaker starts the image as ``<entrypoint> train`` with:

* hyperparameters in ``/opt/ml/input/config/hyperparameters.json`` (every value a string);
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

from mlhpc.spec import WorkloadSpec

FAILURE_EXIT_CODE = 255
# Keys the SageMaker SDK adds for its own script mode; not workload arguments.
RESERVED_PREFIX = "sagemaker_"


def root() -> Path:
    """Return the SageMaker container root (/opt/ml unless MLHPC_SAGEMAKER_ROOT says otherwise)."""
    return Path(os.environ.get("MLHPC_SAGEMAKER_ROOT", "/opt/ml"))


def channel_dir(name: str = "training") -> Path | None:
    """Return /opt/ml/input/data/<name> when SageMaker mounted that channel, else None."""
    path = root() / "input" / "data" / name
    return path if path.is_dir() else None


def _decode(value: Any) -> str:
    """Undo the SDK's JSON encoding of hyperparameter values ('"abc"' -> abc, '8' -> 8)."""
    if not isinstance(value, str):
        return json.dumps(value) if not isinstance(value, int | float) else str(value)
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    if isinstance(decoded, str):
        return decoded
    if isinstance(decoded, bool):
        return "true" if decoded else "false"
    if isinstance(decoded, list):
        return ",".join(str(v) for v in decoded)
    return value


def hyperparameters_to_argv(hyperparameters: dict[str, Any]) -> list[str]:
    """Turn SageMaker hyperparameters into `--key value` options (SageMaker's own keys dropped)."""
    argv: list[str] = []
    for key, value in sorted(hyperparameters.items()):
        if key.startswith(RESERVED_PREFIX):
            continue
        argv += [f"--{key.replace('_', '-')}", os.path.expandvars(_decode(value))]
    return argv


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
        argv = [
            *hyperparameters_to_argv(hyperparameters),
            *extra,
            "--out",
            os.environ.get("SM_MODEL_DIR", str(base / "model")),
            "--checkpoint-dir",
            str(base / "checkpoints"),
        ]
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
