"""The Lambda functions' native packages: built for the runtime, found at synthesis, or the fix named.

The layer directory is what `make setup` builds (``python -m stacks.lambda_deps``); tests that
read it fail with the MlhpcError naming `make setup` where it has not been built. The host Python may differ from the
runtime's (3.11 here, 3.14 in Lambda): the import test runs only with a matching interpreter; the
wheel tags are checked on every machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cryptography
import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from mlhpc.errors import MlhpcError
from stacks import lambda_deps
from stacks.constructs.tls_bundle import CODE, SelfSignedTlsBundle
from stacks.lambda_deps import TLS_BUNDLE, Dependencies, installed_distributions


@pytest.fixture(scope="module")
def layer() -> Path:
    """Return the built layer directory; without `make setup` this fails with the MlhpcError naming it."""
    return TLS_BUNDLE.require()


def runtime_tags() -> set[Tag]:
    """Every wheel tag python3.14 on Amazon Linux 2023 (x86_64, glibc 2.34) can load, per packaging."""
    python = TLS_BUNDLE.python
    major, minor = (int(p) for p in python.version.split("."))
    glibc_major, glibc_minor = python.glibc
    platforms = [f"manylinux_{glibc_major}_{m}_{python.machine}" for m in range(glibc_minor, 16, -1)]
    platforms += [f"manylinux2014_{python.machine}", f"linux_{python.machine}"]
    version = (major, minor)
    return {
        *cpython_tags(version, abis=[f"cp{major}{minor}"], platforms=platforms),
        *compatible_tags(version, interpreter=f"cp{major}{minor}", platforms=platforms),
    }


def wheel_tags(dist_info: Path) -> set[Tag]:
    text = (dist_info / "WHEEL").read_text(encoding="utf-8")
    tags = set()
    for line in text.splitlines():
        if line.startswith("Tag: "):
            _, _, _, parsed = parse_wheel_filename(f"x-0-{line[5:].strip()}.whl")
            tags |= set(parsed)
    return tags


def test_every_wheel_in_the_layer_is_built_for_the_lambda_runtime(layer: Path) -> None:
    site = layer / "python"
    allowed = runtime_tags()
    infos = sorted(site.glob("*.dist-info"))
    assert {i.name.split("-")[0].lower() for i in infos} == {"cryptography", "cffi", "pycparser"}
    for info in infos:
        tags = wheel_tags(info)
        assert tags and tags <= allowed, (info.name, sorted(map(str, tags - allowed)))
    # and each compiled module is for CPython 3.14 on x86_64 or the stable ABI, nothing else
    suffixes = {p.name.split(".", 1)[1] for p in site.rglob("*.so")}
    assert suffixes and suffixes <= {"cpython-314-x86_64-linux-gnu.so", "abi3.so"}, suffixes


def test_the_layer_holds_the_versions_the_lock_pins(layer: Path) -> None:
    installed = installed_distributions(layer / "python")
    assert sorted(f"{k.lower()}=={v}" for k, v in installed.items()) == sorted(TLS_BUNDLE.pins())
    assert installed["cryptography"] == cryptography.__version__  # the tests verify what Lambda runs


@pytest.mark.skipif(
    sys.version_info[:2] != tuple(int(p) for p in TLS_BUNDLE.python.version.split(".")),
    reason=f"the layer's compiled code is for Python {TLS_BUNDLE.python.version}, this is "
    f"{sys.version_info.major}.{sys.version_info.minor} (the wheel tags are checked instead)",
)
def test_the_handler_imports_and_makes_a_bundle_with_only_the_lambda_paths(layer: Path) -> None:
    # /var/task (the function's code) and /opt/python (the layer), as Lambda lays them out; the
    # runtime itself provides boto3, which the handler only uses once it runs.
    code = (
        "import sys, types; "
        f"sys.path[:] = [{str(CODE)!r}, {str(layer / 'python')!r}] + [p for p in sys.path if 'site-packages' not in p]; "
        "sys.modules['boto3'] = types.ModuleType('boto3'); "
        "import handler, selfsigned, cryptography; "
        "assert cryptography.__file__.startswith(sys.path[1]), cryptography.__file__; "
        "print(len(selfsigned.make_bundle(('*.ec2.internal',)).emr_zip()))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and int(proc.stdout) > 0, proc.stderr


def test_the_function_code_holds_the_handler_and_generator_only() -> None:
    assert {p.name for p in CODE.glob("*.py")} == {"__init__.py", "handler.py", "selfsigned.py"}


def test_a_missing_layer_stops_synthesis_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MlhpcError) as caught:
        TLS_BUNDLE.require(root=tmp_path)
    err = caught.value
    assert "cryptography==" in err.message and "python3.14 on x86_64" in err.message
    assert str(tmp_path) in err.message
    assert err.fix.startswith("run `make setup`") and err.next_command == "make setup"


def test_the_directory_name_follows_the_pins_and_the_runtime(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("cffi==2.1.1\ncryptography==50.0.2\npycparser==3.12\nnumpy==2.4.6\n", encoding="utf-8")
    first = TLS_BUNDLE.key(lock)
    lock.write_text("cffi==2.1.1\ncryptography==50.0.2\npycparser==3.12\nnumpy==2.4.7\n", encoding="utf-8")
    assert TLS_BUNDLE.key(lock) == first  # a package the function does not ship changes nothing
    lock.write_text("cffi==2.1.1\ncryptography==50.0.3\npycparser==3.12\n", encoding="utf-8")
    assert TLS_BUNDLE.key(lock) != first
    arm = Dependencies(
        name=TLS_BUNDLE.name, distributions=TLS_BUNDLE.distributions, purpose=TLS_BUNDLE.purpose,
        python=lambda_deps.LambdaPython(version="3.14", architecture="arm64", glibc=(2, 34)),
    )  # fmt: skip
    assert arm.python.pip_platform == "manylinux2014_aarch64" and arm.key(lock) != TLS_BUNDLE.key(lock)


def test_a_distribution_the_lock_does_not_pin_is_refused_with_the_fix(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("cryptography==50.0.2\n", encoding="utf-8")
    with pytest.raises(MlhpcError, match="pins no version of cffi, pycparser") as caught:
        TLS_BUNDLE.pins(lock)
    assert "make lock" in caught.value.fix


def tls_template() -> Template:
    stack = Stack(App(), "Bare", env={"region": "us-east-1"})
    SelfSignedTlsBundle(
        stack, "Tls", bucket=s3.Bucket(stack, "Artifacts"), key=kms.Key(stack, "Key"), prefix="tls/",
        dns_names=("*.ec2.internal",),
    )  # fmt: skip
    return Template.from_stack(stack)


@pytest.mark.synth
def test_the_function_runs_on_the_layers_runtime_and_architecture(layer: Path) -> None:
    template = tls_template()
    layers = template.find_resources(
        "AWS::Lambda::LayerVersion",
        {"Properties": {"CompatibleRuntimes": ["python3.14"], "CompatibleArchitectures": ["x86_64"]}},
    )
    (layer_id,) = layers
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Runtime": "python3.14", "Architectures": ["x86_64"], "Layers": [{"Ref": layer_id}]},
    )
    description = layers[layer_id]["Properties"]["Description"]
    assert description == f"{', '.join(TLS_BUNDLE.pins())} for python3.14 (x86_64)"


@pytest.mark.synth
def test_the_layer_asset_hash_is_the_same_wherever_the_clone_lives(
    layer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def layer_key() -> str:
        (layer,) = tls_template().find_resources("AWS::Lambda::LayerVersion").values()
        return str(layer["Properties"]["Content"]["S3Key"])

    here = layer_key()
    elsewhere = tmp_path / "elsewhere" / layer.name
    shutil.copytree(layer, elsewhere, symlinks=True)
    monkeypatch.setattr(lambda_deps, "BUILD_ROOT", tmp_path / "elsewhere")
    assert TLS_BUNDLE.require() == elsewhere
    assert layer_key() == here and here.endswith(".zip")
    # bytecode a host Python leaves behind is not part of the layer
    (elsewhere / "python" / "cryptography" / "__pycache__").mkdir(exist_ok=True)
    (elsewhere / "python" / "cryptography" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert layer_key() == here
    # while a changed file is
    (elsewhere / "python" / "cryptography" / "__about__.py").write_text("__version__ = 'other'\n")
    assert layer_key() != here


def test_synthesis_without_the_layer_is_the_mlhpc_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lambda_deps, "BUILD_ROOT", tmp_path)
    with pytest.raises(MlhpcError, match="does not exist"):
        tls_template()
