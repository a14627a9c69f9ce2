"""Every workload's arguments survive each encoding the codec has: argv, hyperparameters, environment.

Arguments are drawn from each spec's own field types and constraints (bounds, Literal choices,
patterns, list lengths), mixed with its defaults and demo values; values a validator refuses are
put back to their default, so every drawn example is a valid set of arguments.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mlhpc import invocation
from mlhpc.spec import WorkloadArgs, WorkloadSpec
from workloads import registry
from workloads.common import entry

# Text a process can receive: no NUL (argv and environment are C strings), no lone surrogates; and
# the texts each encoding could mistake for something else (JSON, options, lists, empty).
TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12
) | st.sampled_from(
    ['"x"', "null", "1", "-1", "1e-05", "[1, 2]", "true", "--x", "-", "a,b", "", " ", "a=b", "$HOME"]
)


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for meta in metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(meta, attr, None)
            if value is not None:
                found[attr] = value
    return found


def strategy(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Return values of a pydantic field's type within its constraints."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return strategy(base, [*metadata, *extra])
    if origin in (typing.Union, __import__("types").UnionType):
        members = typing.get_args(annotation)
        return st.one_of(*(st.none() if m is type(None) else strategy(m, metadata) for m in members))
    if origin is Literal:
        return st.sampled_from(typing.get_args(annotation))
    bounds = _bounds(metadata)
    if origin in (list, tuple):
        (element,) = typing.get_args(annotation)[:1]
        return st.lists(strategy(element, []), min_size=bounds.get("min_length", 0), max_size=4)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = bounds.get("ge", bounds["gt"] + 1 if "gt" in bounds else -(2**40))
        high = bounds.get("le", bounds["lt"] - 1 if "lt" in bounds else 2**40)
        return st.integers(low, high)
    if annotation is float:
        return st.floats(
            min_value=bounds.get("ge", bounds.get("gt")),
            max_value=bounds.get("le", bounds.get("lt")),
            exclude_min="gt" in bounds,
            exclude_max="lt" in bounds,
            allow_nan=False,
            allow_infinity=False,
        )
    if annotation is str:
        if "pattern" in bounds:
            return st.from_regex(bounds["pattern"], fullmatch=True)
        return TEXT.filter(lambda s: len(s) >= bounds.get("min_length", 0))
    raise AssertionError(f"no strategy for {annotation!r}: add one so the round trip covers it")


@st.composite
def arguments(draw: st.DrawFn, spec: WorkloadSpec) -> WorkloadArgs:
    """Draw a valid set of arguments of a workload."""
    defaults = spec.defaults()
    values: dict[str, Any] = {}
    for name, info in spec.args.model_fields.items():
        known = [v for v in (spec.demo_args.get(name), getattr(spec.args(), name)) if v is not None]
        drawn = strategy(info.annotation, info.metadata)
        values[name] = draw(st.one_of(st.sampled_from(known), drawn) if known else drawn)
    for _ in range(len(values) + 1):
        try:
            return spec.args.model_validate(values)
        except ValidationError as err:
            for error in err.errors():
                named = [str(p) for p in error["loc"][:1]] or [
                    k for k in values if re.search(rf"\b{re.escape(k)}\b", error["msg"])
                ]
                for key in named:
                    values[key] = defaults[key]
    assume(False)
    raise AssertionError("unreachable")


RUN = st.builds(
    invocation.RunOptions,
    out=st.none() | TEXT,
    checkpoint_dir=st.none() | TEXT,
    resume=st.booleans(),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECS = [registry.get(name) for name in registry.names()]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@SETTINGS
@given(data=st.data())
def test_argv_round_trip(spec: WorkloadSpec, data: st.DataObject) -> None:
    args = data.draw(arguments(spec))
    run = data.draw(RUN)
    nproc = data.draw(st.none() | st.integers(1, 16))
    argv = invocation.options(spec, args, run, nproc_per_node=nproc)
    back = invocation.parse(spec, argv, env={})
    assert back.args == args
    assert back.run == invocation.RunOptions(
        out=invocation.default_out(spec) if run.out is None else run.out,
        checkpoint_dir=run.checkpoint_dir,
        resume=run.resume,
    )
    assert back.nproc_per_node == nproc
    # The entrypoint decodes with the same parser.
    assert entry.parse_args(spec, argv) == (args, back.run)
    # What each rank of a launched node runs decodes to the same arguments, without the launcher.
    if nproc:
        launch = invocation.launch_argv(spec, back, python="python")
        rank = launch[launch.index("--") + 1 :]
        assert rank[:3] == ["python", "-m", spec.module]
        again = invocation.parse(spec, rank[3:], env={})
        assert (again.args, again.run, again.nproc_per_node) == (args, back.run, None)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@SETTINGS
@given(data=st.data())
def test_hyperparameters_round_trip(spec: WorkloadSpec, data: st.DataObject) -> None:
    args = data.draw(arguments(spec))
    hyperparameters = invocation.to_hyperparameters(spec, args)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in hyperparameters.items())
    # SageMaker hands them over as /opt/ml/input/config/hyperparameters.json.
    on_disk = json.loads(json.dumps(hyperparameters))
    assert invocation.from_hyperparameters(spec, on_disk) == args


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@SETTINGS
@given(run=RUN, run_id=TEXT)
def test_run_options_round_trip_through_the_environment(
    spec: WorkloadSpec, run: invocation.RunOptions, run_id: str
) -> None:
    env = invocation.run_environment(run, run_id=run_id)
    assert env[invocation.ENV_RUN_ID] == run_id
    back = invocation.parse(spec, [], env=env).run
    assert back.out == (invocation.default_out(spec) if run.out is None else run.out)
    assert back.checkpoint_dir == run.checkpoint_dir
