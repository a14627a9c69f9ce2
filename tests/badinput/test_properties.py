"""Property tests: the config loader and the CLI's argument parsing raise nothing but their own errors.

The corpus lists mistakes someone thought of; these throw generated text, bytes and argv at the
same entry points. Fixed seeds (derandomize) keep CI reproducible; 200 examples each keep it quick.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import click.testing
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlhpc import invocation
from mlhpc.config import ConfigError, load_config_with_warnings, parse_config
from mlhpc.spec import SpecError
from mlhpc_app.cli.main import EXIT_BUG, app
from workloads.registry import all_specs

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Pieces of YAML that meet the loader's edge cases when shuffled together: anchors and aliases,
# merges, tags (core and not), flow and block collections, documents, quotes, odd scalars.
YAML_PIECES = [
    *("project:", "network:", "hpc:", "name:", "az_count:", "cidr:", "tags:", "gpu:", "instance_types:"),
    *(" ", "  ", "\n", "\n  ", "\n    ", "\t", "- ", ": ", ", ", "? ", "#"),
    *("[", "]", "{", "}", "'", '"', "|", ">", "---", "...", "<<: ", "%YAML 1.1\n"),
    *("&a ", "&b ", "*a", "*b", "*c", "&a [*a]", "!!int ", "!!str ", "!!float ", "!!bool ", "!!null "),
    *("!!map ", "!!seq ", "!!binary ", "!!timestamp ", "!!python/object:os.system ", "!Ref ", "! "),
    *("~", "null", "yes", "no", "on", "1", "-1", "0x_", "0o9", "1e999", ".inf", ".nan", "1_0", "2024-13-45"),
    *(
        "10.0.0.0/16",
        "mlhpc",
        "us-east-1",
        "x" * 300,
        "9" * 5000,
        "\u00e9",
        "\ufeff",
        "\x00",
        "\x85",
        "\u2028",
    ),
]
yaml_like = st.lists(st.sampled_from(YAML_PIECES), max_size=40).map("".join)
config_text = st.one_of(st.text(max_size=300), yaml_like)


@PROPERTY
@given(text=config_text)
def test_parse_config_raises_only_config_error(text: str) -> None:
    try:
        parse_config(text, source="fuzz.yaml")
    except ConfigError as err:
        assert err.issues, "a ConfigError lists what is wrong"
        assert all(issue.message and issue.fix for issue in err.issues)
        assert len(str(err)) < 20_000, "messages stay short whatever the input"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One temp directory for every example (function-scoped tmp_path would be shared anyway)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _mangle(data: bytes, noise: bytes, at: int) -> bytes:
    spot = at % (len(data) + 1)
    return data[:spot] + noise + data[spot:]


config_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(
        _mangle,
        yaml_like.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(min_size=1, max_size=4),
        st.integers(min_value=0),
    ),
)


@PROPERTY
@given(raw=config_bytes)
def test_loading_a_file_of_any_bytes_raises_only_config_error(raw: bytes, scratch: Path) -> None:
    path = scratch / "fuzz.yaml"
    path.write_bytes(raw)
    try:
        load_config_with_warnings(path)
    except ConfigError as err:
        assert err.issues and all(issue.message and issue.fix for issue in err.issues)


# --- --set key=value ---------------------------------------------------------------------------

SPECS = all_specs()
KEYS = sorted({key for spec in SPECS.values() for key in spec.args.model_fields})
VALUES = [
    "",
    "0",
    "-1",
    "1e3",
    "nan",
    "inf",
    "true",
    "maybe",
    "a,b",
    "1,,2",
    "N=4,6",
    "9" * 5000,
    "s3://",
    "x" * 400,
]
pair = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(KEYS) | st.text(max_size=20),
        st.sampled_from(VALUES) | st.text(),
    ),
)


@PROPERTY
@given(name=st.sampled_from(sorted(SPECS)), pairs=st.lists(pair, max_size=5))
def test_set_pairs_raise_only_spec_error(name: str, pairs: list[str]) -> None:
    try:
        invocation.from_pairs(SPECS[name], pairs)
    except SpecError as err:
        assert err.message and err.fix
        assert len(str(err)) < 5_000, "a huge value is echoed shortened"


# --- the CLI's argument parsing -----------------------------------------------------------------


def _parsing_only() -> Any:
    """The CLI's click command with every command's body replaced by nothing: parsing, conversion, usage errors."""
    root = typer.main.get_command(app)

    def stub(command: Any) -> None:
        subcommands = getattr(command, "commands", None)  # typer's groups are not click.Group subclasses
        if subcommands is not None:
            for sub in subcommands.values():
                stub(sub)
        else:
            command.callback = lambda **_kwargs: None

    stub(root)
    assert getattr(root, "commands", None), "the CLI's commands were found and stubbed"
    return root


PARSING_ONLY = _parsing_only()
COMMANDS = ["validate", "demo", "run", "emulate", "batch", "sagemaker", "eks", "submit", "status", "logs"]
COMMANDS += [
    "cancel",
    "list",
    "results",
    "outputs",
    "image",
    "build",
    "push",
    "hello",
    "pinn",
    "superradiance",
]
OPTIONS = ["--help", "--set", "-s", "--workers", "-w", "--out", "--checkpoint-dir", "--no-resume", "--demo"]
OPTIONS += [
    "--dry-run",
    "--output",
    "json",
    "table",
    "--nodes",
    "--region",
    "--profile",
    "--backend",
    "--queue",
]
OPTIONS += ["--online", "--instance-type", "--spot", "--follow", "--detach", "--", "-", "0", "-1", "2", "n=5"]
argv = st.lists(st.sampled_from(COMMANDS + OPTIONS) | st.text(max_size=30), max_size=8)


@PROPERTY
@given(args=argv)
def test_argument_parsing_exits_through_the_cli_only(args: list[str]) -> None:
    result = click.testing.CliRunner().invoke(PARSING_ONLY, args, prog_name="mlhpc")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output


run_options = st.lists(
    st.one_of(
        st.tuples(st.just("--set"), pair),
        st.tuples(
            st.sampled_from(["--out", "--checkpoint-dir"]), st.sampled_from(VALUES) | st.text(max_size=40)
        ),
        st.tuples(st.sampled_from(["--demo", "--no-resume"])),
        st.tuples(st.just("--workers"), st.sampled_from(["1", "2", "0", "x"])),
    ),
    max_size=5,
)


@PROPERTY
@given(name=st.sampled_from(sorted(SPECS)), options=run_options)
def test_mlhpc_run_dry_run_never_hits_a_bug_and_writes_nothing(
    name: str, options: list[tuple[str, ...]], scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real command body, through --dry-run: arguments, --set values and both locations are
    # checked, nothing is started or written (the scratch directory stays empty).
    work = scratch / "run"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    args = ["run", name, *(part for option in options for part in option), "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2) and result.exit_code != EXIT_BUG, result.output
    assert "Traceback" not in result.output
    assert os.listdir(work) == [], "a dry run writes nothing"
