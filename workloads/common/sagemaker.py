"""The SageMaker bring-your-own-container training contract, for every workload at once.

SageMaker starts the image as ``<entrypoint> train`` with:

* hyperparameters in ``/opt/ml/input/config/hyperparameters.json`` (every value a string, decoded
  by :func:`mlhpc.invocation.from_hyperparameters`, never expanded: a value is data, the same on
  every backend);
* the cluster in ``/opt/ml/input/config/resourceconfig.json`` (``current_host``, ``hosts``);
  SageMaker sets no ``SM_*`` variable for a bring-your-own container, so :func:`run_training`
  exports ``SM_HOSTS`` and ``SM_CURRENT_HOST`` from it (the names the SageMaker training toolkit
  uses), which :func:`workloads.common.dist.from_env` reads;
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

    Hyperparameters are decoded by the invocation codec (SageMaker's own keys dropped) and taken as
    they are: ``${NAME}`` in a value stays those characters, as on Batch and locally (a workload
    finds its channel with :func:`channel_dir`, not through a variable in a value).
    """
    base = root()
    args = invocation.from_hyperparameters(spec, hyperparameters)
    run = invocation.RunOptions(
        out=os.environ.get("SM_MODEL_DIR", str(base / "model")), checkpoint_dir=str(base / "checkpoints")
    )
    return [*invocation.argument_options(spec, args), *extra, *invocation.run_options(run)]


def cluster_environment(resourceconfig: Path) -> dict[str, str]:
    """Return ``SM_HOSTS`` and ``SM_CURRENT_HOST`` from resourceconfig.json (nothing when it is absent)."""
    if not resourceconfig.is_file():
        return {}
    config = json.loads(resourceconfig.read_text(encoding="utf-8"))
    hosts = config.get("hosts") if isinstance(config, dict) else None
    current = config.get("current_host") if isinstance(config, dict) else None
    if not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts) and current in hosts):
        raise ValueError(
            f"{resourceconfig} must name its current_host among its hosts, found {config!r:.200}"
        )
    return {"SM_HOSTS": json.dumps(hosts), "SM_CURRENT_HOST": str(current)}


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
        exported = {
            f"SM_CHANNEL_{channel.name.upper()}": str(channel)
            for channel in (base / "input" / "data").glob("*")
        }
        exported.update(cluster_environment(base / "input" / "config" / "resourceconfig.json"))
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
        saved = {name: os.environ.get(name) for name in exported}
        os.environ.update(exported)  # what the job reads while it runs (a container's whole life)
        try:
            code = runner(argv)
        finally:
            sys.stderr = previous
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        reason = "\n".join(tail.lines) or f"{spec.name} exited with code {code}"
    if code == 0:
        return 0
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason + "\n", encoding="utf-8")
    print(reason, file=sys.stderr)
    return FAILURE_EXIT_CODE
