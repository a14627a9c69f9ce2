"""How a workload is invoked, spelled once: argv, SageMaker hyperparameters, environment, the image's entry.

Every backend starts the same program, ``python -m workloads.<name>``, and only the way the
options reach it differs. This module is the one encoder and the one decoder of each way,
so a job definition, a submit request, a Kubernetes manifest, a local run and the
entrypoint inside the container cannot disagree.

The image's entry point
-----------------------
Every workload image sets ``ENTRYPOINT ["python", "-m", "workloads.<name>"]``
(:func:`entrypoint`) and **no CMD**; a test reads each ``workloads/*/Dockerfile`` and holds it
to this. Whatever a service adds is therefore *options only* (:func:`options`):

* Docker / ECS / AWS Batch: the container runs ENTRYPOINT + (command override, else CMD), and
  Batch's ``command`` (in the job definition or in ``containerOverrides``) replaces CMD only.
  The job definition's command and every override are options: ``--problem burgers --out
  Ref::out --checkpoint-dir Ref::checkpoint``. Never ``python -m ...`` again: that would run
  ``python -m workloads.pinn python -m workloads.pinn ...`` and exit 2.
* AWS Batch multi-node, several GPUs per node: the options begin with the launcher option
  ``--nproc-per-node N`` (:func:`launcher_options`). The entrypoint sees it, validates the
  rest, and becomes :mod:`workloads.common.batch_launch` ``--nproc-per-node N -- python -m
  workloads.<name> <the other options>`` (:func:`launch_argv`), one rank per GPU.
* SageMaker training runs ``docker run IMAGE train`` (the bring-your-own-algorithm contract):
  ENTRYPOINT + ``train``. The entrypoint sees :data:`SAGEMAKER_TRAIN` and reads the
  hyperparameters (:func:`from_hyperparameters`).
* Kubernetes: ``command`` replaces ENTRYPOINT and ``args`` replaces CMD; the manifest sets
  ``command`` to :func:`entrypoint` (the image's own) and ``args`` to :func:`options`.
* ``mlhpc run`` (local, Ray): ``python -m workloads.<name>`` in process with :func:`options`.

Encodings
---------
* argv: one option per argument that differs from its default, ``--name-with-dashes VALUE``
  (``--name=VALUE`` when VALUE begins with ``-``, so argparse cannot take it for an option);
  booleans ``true``/``false``, lists comma-joined, ``None`` as an empty value.
* SageMaker hyperparameters: every argument not left at a default of ``None``, each value a
  string as SageMaker passes them: JSON (``8``, ``true``, ``[0, 1]``, ``null``), except a text
  that is not valid JSON, which is sent as it is (``burgers``). Decoding also accepts what the
  SageMaker SDK's framework estimators send (every value JSON-encoded) and plain strings typed
  in the console (``0,1``).
* environment: the run options only (:func:`run_environment`: ``MLHPC_OUT``,
  ``MLHPC_CHECKPOINT_DIR``, ``MLHPC_RUN_ID``); the entrypoint takes ``--out`` and
  ``--checkpoint-dir`` from them when no option is given.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import shlex
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlhpc.errors import echo
from mlhpc.spec import SpecError, WorkloadArgs, WorkloadSpec, describe_range

# 128 + SIGTERM: what a process stopped by SIGTERM reports. The entrypoint exits with it after
# saving a checkpoint; Batch's retry strategy and the Kubernetes pod failure policy retry it.
RESUMABLE_EXIT_CODE = 143
# Where rank 0 listens for the others (torch.distributed's TCP store), unless MASTER_PORT says.
RENDEZVOUS_PORT = 29500

# The run options every workload takes besides its own arguments.
OUT_OPTION = "--out"
CHECKPOINT_OPTION = "--checkpoint-dir"
NO_RESUME_OPTION = "--no-resume"
# The multi-node launcher's option: ranks (GPUs) to start on this node.
LAUNCH_OPTION = "--nproc-per-node"
# What SageMaker appends to the ENTRYPOINT.
SAGEMAKER_TRAIN = "train"
# Hyperparameter keys the SageMaker SDK adds for its own script mode; not workload arguments.
SAGEMAKER_RESERVED_PREFIX = "sagemaker_"
# The SageMaker input channel a job's input (`mlhpc submit --input`) is mounted as.
TRAINING_CHANNEL = "training"

ENV_OUT = "MLHPC_OUT"
ENV_CHECKPOINT_DIR = "MLHPC_CHECKPOINT_DIR"
ENV_RUN_ID = "MLHPC_RUN_ID"


@dataclass(frozen=True)
class RunOptions:
    """Where a run writes and whether it resumes (None: the entrypoint's default)."""

    out: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = True


@dataclass(frozen=True)
class Invocation:
    """An entrypoint's argv, decoded: the workload's arguments, the run options, the launcher's ranks."""

    args: WorkloadArgs
    run: RunOptions
    nproc_per_node: int | None = None


# --- the image ---------------------------------------------------------------------------


def entrypoint(spec: WorkloadSpec) -> list[str]:
    """Return the image's ENTRYPOINT (and the Kubernetes ``command``): ``python -m MODULE``."""
    return ["python", "-m", spec.module]


def default_out(spec: WorkloadSpec) -> str:
    """Return where a run writes when neither ``--out`` nor ``$MLHPC_OUT`` says."""
    return f"results/{spec.name}/local"


def image_cmd(spec: WorkloadSpec) -> list[str]:
    """Return the image's CMD: none (every service supplies options, or nothing)."""
    del spec
    return []


# --- values ------------------------------------------------------------------------------


def _unoptional(annotation: Any) -> tuple[Any, bool]:
    """Return (the annotation without None, whether None was allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        rest = tuple(m for m in members if m is not type(None))
        if len(rest) < len(members):
            return (rest[0] if len(rest) == 1 else typing.Union[rest]), True  # noqa: UP007
    return annotation, False


def is_sequence(annotation: Any) -> bool:
    """True for list/tuple arguments (comma-separated on the command line)."""
    return typing.get_origin(_unoptional(annotation)[0]) in (list, tuple)


def _accepts_text(annotation: Any) -> bool:
    """True when an empty string is a value of this (None-less) type rather than 'no value'."""
    if annotation is str:
        return True
    if typing.get_origin(annotation) is Literal:
        return "" in typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts_text(m) for m in typing.get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, str)


def _field(spec: WorkloadSpec, name: str) -> Any:
    return spec.args.model_fields.get(name)


def encode_text(value: Any) -> str:
    """Return one argument value as command-line text (lists comma-joined, None empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return encode_text(value.value)
    if isinstance(value, list | tuple):
        return ",".join(encode_text(v) for v in value)
    return str(value)


def decode_text(spec: WorkloadSpec, name: str, text: str) -> Any:
    """Return the raw value of argument ``name`` from its command-line text (validation comes later)."""
    field = _field(spec, name)
    if field is None:
        return text  # an unknown key: validation names it
    annotation, optional = _unoptional(field.annotation)
    if optional and text == "" and not _accepts_text(annotation):
        return None
    if is_sequence(annotation):
        return [v.strip() for v in text.split(",") if v.strip()]
    return text


def _dump(args: WorkloadArgs) -> dict[str, Any]:
    return {name: getattr(args, name) for name in type(args).model_fields}


def _defaults(spec: WorkloadSpec) -> dict[str, Any]:
    return _dump(spec.args())


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _option(flag: str, text: str) -> list[str]:
    # argparse takes a separate value beginning with '-' for an option; the joined form it never does.
    return [f"{flag}={text}"] if text.startswith("-") else [flag, text]


# --- argv ----------------------------------------------------------------------------------


def argument_options(spec: WorkloadSpec, args: WorkloadArgs | None) -> list[str]:
    """Return ``--name value`` for every argument that differs from its default."""
    if args is None:
        return []
    defaults = _defaults(spec)
    argv: list[str] = []
    for name, value in _dump(args).items():
        if value == defaults.get(name):
            continue
        annotation, _ = _unoptional(spec.args.model_fields[name].annotation)
        if value is None and _accepts_text(annotation):
            raise SpecError(
                f"{spec.name}: {name}=None cannot be written as an option (its default is {defaults[name]!r})",
                fix=f"give {name} a value, or leave it at its default",
            )
        argv += _option(_flag(name), encode_text(value))
    return argv


def run_options(run: RunOptions) -> list[str]:
    """Return the run options (``--out``, ``--checkpoint-dir``, ``--no-resume``) that are set."""
    argv: list[str] = []
    if run.out is not None:
        argv += _option(OUT_OPTION, run.out)
    if run.checkpoint_dir is not None:
        argv += _option(CHECKPOINT_OPTION, run.checkpoint_dir)
    if not run.resume:
        argv.append(NO_RESUME_OPTION)
    return argv


def launcher_options(nproc_per_node: int | None) -> list[str]:
    """Return the launcher option (``--nproc-per-node N``), or nothing for one rank per node."""
    return [LAUNCH_OPTION, str(nproc_per_node)] if nproc_per_node else []


def nproc_per_node(spec: WorkloadSpec, gpus_per_node: int) -> int | None:
    """Return how many ranks the launcher starts on a node with this many GPUs (None: no launcher)."""
    return gpus_per_node if spec.distributed and gpus_per_node > 1 else None


def options(
    spec: WorkloadSpec,
    args: WorkloadArgs | None = None,
    run: RunOptions | None = None,
    *,
    nproc_per_node: int | None = None,
) -> list[str]:
    """Return what follows the ENTRYPOINT: the Batch command, the Kubernetes args, a local run's argv."""
    return [
        *launcher_options(nproc_per_node),
        *argument_options(spec, args),
        *run_options(run or RunOptions()),
    ]


def command(
    spec: WorkloadSpec,
    args: WorkloadArgs | None = None,
    run: RunOptions | None = None,
    *,
    nproc_per_node: int | None = None,
) -> list[str]:
    """Return the whole argv a container runs: ENTRYPOINT + :func:`options`."""
    return [*entrypoint(spec), *options(spec, args, run, nproc_per_node=nproc_per_node)]


def launch_argv(spec: WorkloadSpec, invocation: Invocation, *, python: str = sys.executable) -> list[str]:
    """Return :mod:`workloads.common.batch_launch`'s argv: ``--nproc-per-node N -- <the rank command>``.

    The rank command is this interpreter running the workload with the same arguments and run
    options, without the launcher option (each rank is one process).
    """
    rank = [python, "-m", spec.module, *options(spec, invocation.args, invocation.run)]
    return [*launcher_options(invocation.nproc_per_node), "--", *rank]


def parser(spec: WorkloadSpec, env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Return the entrypoint's parser: one option per argument of the spec, then the run options."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog=shlex.join(entrypoint(spec)),
        description=spec.description,
        epilog=f"Example: {shlex.join(entrypoint(spec))} {OUT_OPTION} results/{spec.name}/local "
        + " ".join(f"{_flag(k)} {encode_text(v)}" for k, v in list(spec.demo_args.items())[:3]),
    )
    group = parser.add_argument_group(f"{spec.name} arguments")
    for name, info in spec.args.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, enum.Enum):
            default = default.value
        allowed = describe_range(info)
        text = f"{info.description or ''} (default: {default}{'; ' + allowed if allowed else ''})"
        metavar = "A,B,..." if is_sequence(info.annotation) else name.upper()
        group.add_argument(_flag(name), dest=name, default=None, metavar=metavar, help=text.strip())
    common = parser.add_argument_group("run options")
    common.add_argument(
        OUT_OPTION,
        dest="out",
        default=env.get(ENV_OUT, default_out(spec)),
        help=f"output directory or s3:// prefix (default: ${ENV_OUT} or results/<workload>/local)",
    )
    common.add_argument(
        CHECKPOINT_OPTION,
        dest="checkpoint_dir",
        default=env.get(ENV_CHECKPOINT_DIR),
        help=f"checkpoint directory or s3:// prefix (default: ${ENV_CHECKPOINT_DIR} or <out>/checkpoints)",
    )
    common.add_argument(
        NO_RESUME_OPTION,
        dest="no_resume",
        action="store_true",
        help="ignore an existing checkpoint and start over",
    )
    common.add_argument(
        LAUNCH_OPTION,
        dest="nproc_per_node",
        type=int,
        default=None,
        metavar="N",
        help="start N ranks on this node through workloads.common.batch_launch "
        "(what a multi-node AWS Batch job definition passes; one per GPU)",
    )
    return parser


def parse(spec: WorkloadSpec, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Invocation:
    """Decode an entrypoint's argv (raises SpecError for bad values, SystemExit as argparse does)."""
    namespace = parser(spec, env).parse_args(list(argv))
    values = {
        name: decode_text(spec, name, raw)
        for name in spec.args.model_fields
        if (raw := getattr(namespace, name)) is not None
    }
    if namespace.nproc_per_node is not None and namespace.nproc_per_node < 1:
        raise SpecError(
            f"{LAUNCH_OPTION} {namespace.nproc_per_node} starts no rank",
            fix=f"give {LAUNCH_OPTION} N with N >= 1 (the GPUs of the node)",
        )
    return Invocation(
        args=spec.validate_args(values),
        run=RunOptions(
            out=namespace.out, checkpoint_dir=namespace.checkpoint_dir, resume=not namespace.no_resume
        ),
        nproc_per_node=namespace.nproc_per_node,
    )


# --- `--set key=value` -------------------------------------------------------------------


def from_pairs(
    spec: WorkloadSpec, pairs: Sequence[str], *, base: Mapping[str, Any] | None = None
) -> WorkloadArgs:
    """Validate ``key=value`` strings (the CLI's ``--set``) on top of base values (raises SpecError)."""
    values: dict[str, Any] = dict(base or {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(
                f"{echo(pair)} is not key=value", fix="write it as --set key=value, e.g. --set steps=100"
            )
        key = key.strip().replace("-", "_")
        values[key] = decode_text(spec, key, value.strip())
    return spec.validate_args(values)


# --- SageMaker hyperparameters -------------------------------------------------------------


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _hyperparameter(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str) and not _is_json(value):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def to_hyperparameters(spec: WorkloadSpec, args: WorkloadArgs) -> dict[str, str]:
    """Return the arguments as SageMaker hyperparameters (all strings; ones left at a None default omitted)."""
    defaults = _defaults(spec)
    return {
        name: _hyperparameter(value)
        for name, value in _dump(args).items()
        if not (value is None and defaults.get(name) is None)
    }


def decode_hyperparameter(spec: WorkloadSpec, name: str, text: str) -> Any:
    """Return the raw value of argument ``name`` from a hyperparameter string (validation comes later)."""
    field = _field(spec, name)
    try:
        decoded = json.loads(text)
    except ValueError:
        return decode_text(spec, name, text)
    if field is None:
        return decoded
    annotation, optional = _unoptional(field.annotation)
    if decoded is None and optional:
        return None
    if isinstance(decoded, list) and is_sequence(annotation):
        return decoded
    if isinstance(decoded, str):
        return decode_text(spec, name, decoded)
    # Numbers and booleans: the text itself, so pydantic parses it as it parses a command line
    # (and an error quotes what was sent).
    return decode_text(spec, name, text)


def from_hyperparameters(spec: WorkloadSpec, hyperparameters: Mapping[str, Any]) -> WorkloadArgs:
    """Validate SageMaker hyperparameters into arguments (SageMaker's own keys dropped; raises SpecError)."""
    values: dict[str, Any] = {}
    for key, value in hyperparameters.items():
        if key.startswith(SAGEMAKER_RESERVED_PREFIX):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        values[key.replace("-", "_")] = decode_hyperparameter(spec, key.replace("-", "_"), text)
    return spec.validate_args(values)


# --- environment ---------------------------------------------------------------------------


def run_environment(run: RunOptions, *, run_id: str | None = None) -> dict[str, str]:
    """Return the environment that carries the run options (and the run id) into a container."""
    env: dict[str, str] = {}
    if run_id is not None:
        env[ENV_RUN_ID] = run_id
    if run.out is not None:
        env[ENV_OUT] = run.out
    if run.checkpoint_dir is not None:
        env[ENV_CHECKPOINT_DIR] = run.checkpoint_dir
    return env
