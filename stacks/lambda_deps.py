"""Native Python packages of the stacks' Lambda functions, built for the Lambda runtime by `make setup`.

A Lambda function that needs a package with compiled code (``cryptography``) must ship it built
for the runtime's Python and architecture, not for this machine's. pip installs such wheels from
the registry without Docker or a compiler (``--platform manylinux2014_x86_64 --python-version
3.14 --implementation cp --only-binary=:all: --target DIR``).

Where that runs: `make setup` (``python -m stacks.lambda_deps``), once, into
``.build/lambda-deps/<name>-<key>/python/`` (a Lambda layer's layout), where ``key`` hashes what
goes in: the pinned versions (from ``requirements/lock.txt``, the one place versions are pinned)
and the runtime's Python, architecture and pip platform. Synthesis only reads that directory and
stops with an :class:`~mlhpc.errors.MlhpcError` naming `make setup` when it is missing. Not CDK
bundling: a local bundler would need the registry at every synthesis (tests, `cdk diff`), a Docker
bundler needs Docker. The asset hash CDK computes is the hash of the files — the wheels' contents,
pinned, installed with ``--no-compile`` (no ``.pyc`` with timestamps) — so it is the same on every
machine, and the template does not depend on where the clone lives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlhpc.errors import MlhpcError

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
# MLHPC_LAMBDA_DEPS moves it (a cache shared by several clones, a CI cache).
BUILD_ROOT = Path(os.environ.get("MLHPC_LAMBDA_DEPS") or REPO / ".build" / "lambda-deps")
# Bump when the layout or the pip arguments change in a way the key does not see.
FORMAT = 1


@dataclass(frozen=True)
class LambdaPython:
    """A Lambda Python runtime: its version, architecture and the pip platform its wheels need."""

    version: str  # "3.14" -> runtime "python3.14"
    architecture: str  # Lambda's name: "x86_64" or "arm64"
    glibc: tuple[int, int]  # of the runtime's OS: the newest manylinux its wheels may ask for

    @property
    def runtime_name(self) -> str:
        """Return Lambda's runtime identifier, e.g. ``python3.14``."""
        return f"python{self.version}"

    @property
    def machine(self) -> str:
        """Return the machine name wheel tags use (``x86_64``, ``aarch64``)."""
        return {"x86_64": "x86_64", "arm64": "aarch64"}[self.architecture]

    @property
    def pip_platform(self) -> str:
        """Return pip's --platform: manylinux2014 (glibc 2.17), which every Lambda Python OS runs."""
        return f"manylinux2014_{self.machine}"


# python3.12 and later run on Amazon Linux 2023 (glibc 2.34).
PYTHON_3_14_X86_64 = LambdaPython(version="3.14", architecture="x86_64", glibc=(2, 34))


@dataclass(frozen=True)
class Dependencies:
    """The packages one function needs (its whole closure), pinned by the lock, for one runtime."""

    name: str
    distributions: tuple[str, ...]  # every distribution to install, dependencies included
    python: LambdaPython
    purpose: str  # what the function does with them, for messages

    def pins(self, lock: Path = LOCK) -> tuple[str, ...]:
        """Return ``name==version`` for each distribution, as requirements/lock.txt pins it."""
        pinned = _lock_pins(lock)
        missing = [d for d in self.distributions if _normal(d) not in pinned]
        if missing:
            raise MlhpcError(
                f"{lock.name} pins no version of {', '.join(missing)} (needed by the {self.name} Lambda function)",
                fix="add them to pyproject.toml's dependencies and run `make lock`",
            )
        return tuple(f"{d}=={pinned[_normal(d)]}" for d in self.distributions)

    def key(self, lock: Path = LOCK) -> str:
        """Return the hash of everything that decides the directory's contents."""
        spec = {
            "format": FORMAT,
            "pins": self.pins(lock),
            "python": self.python.version,
            "architecture": self.python.architecture,
            "platform": self.python.pip_platform,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def directory(self, root: Path | None = None, lock: Path = LOCK) -> Path:
        """Return the layer directory (it holds ``python/``) for the current pins, under ``BUILD_ROOT`` by default."""
        return (root or BUILD_ROOT) / f"{self.name}-{self.key(lock)}"

    def require(self, root: Path | None = None, lock: Path = LOCK) -> Path:
        """Return the built layer directory; raise MlhpcError saying to run `make setup` when it is missing."""
        path = self.directory(root, lock)
        if not (path / "python").is_dir():
            raise MlhpcError(
                f"the {self.purpose} Lambda function needs {', '.join(self.pins(lock))} built for "
                f"{self.python.runtime_name} on {self.python.architecture}, and {path} does not exist",
                fix="run `make setup`: it installs them there from PyPI once (no Docker needed)",
                next_command="make setup",
            )
        return path

    def build(self, root: Path | None = None, lock: Path = LOCK) -> Path:
        """Install the pinned wheels for the runtime into the layer directory (a no-op when it exists)."""
        root = root or BUILD_ROOT
        final = self.directory(root, lock)
        if (final / "python").is_dir():
            return final
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".{final.name}.tmp{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        python = self.python
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--target", str(staging / "python"), "--platform", python.pip_platform,
            "--python-version", python.version, "--implementation", "cp", "--only-binary=:all:",
            *self.pins(lock),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise MlhpcError(
                f"pip could not install {', '.join(self.pins(lock))} for {python.runtime_name} "
                f"({python.pip_platform}): {(result.stderr or result.stdout).strip()[-800:]}",
                fix="check that PyPI is reachable and has wheels of these versions for that platform",
                next_command="make setup",
            )
        installed = installed_distributions(staging / "python")
        expected = dict(pin.split("==") for pin in self.pins(lock))
        if {_normal(k): v for k, v in installed.items()} != {_normal(k): v for k, v in expected.items()}:
            shutil.rmtree(staging, ignore_errors=True)
            raise MlhpcError(
                f"the {self.name} Lambda dependencies resolved to {installed}, not the pinned {expected}",
                fix=f"list every distribution pip installs in stacks/lambda_deps.py ({self.name}) and pin it",
            )
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)  # console scripts: no use in Lambda
        os.replace(staging, final)
        for stale in root.glob(f"{self.name}-*"):
            if stale != final:
                shutil.rmtree(stale, ignore_errors=True)
        return final


def installed_distributions(site: Path) -> dict[str, str]:
    """Return {distribution: version} of the ``*.dist-info`` directories in a pip --target directory."""
    found = {}
    for info in site.glob("*.dist-info"):
        metadata = (info / "METADATA").read_text(encoding="utf-8")
        name = re.search(r"^Name: (.+)$", metadata, re.MULTILINE)
        version = re.search(r"^Version: (.+)$", metadata, re.MULTILINE)
        if name and version:
            found[name.group(1).strip()] = version.group(1).strip()
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line.strip())
        if match:
            pins[_normal(match.group(1))] = match.group(2)
    return pins


# The self-signed EMR TLS bundle (stacks/constructs/tls_bundle.py): cryptography and what it needs.
TLS_BUNDLE = Dependencies(
    name="tls_bundle",
    distributions=("cryptography", "cffi", "pycparser"),
    python=PYTHON_3_14_X86_64,
    purpose="self-signed TLS bundle",
)
ALL = (TLS_BUNDLE,)


def main(argv: list[str] | None = None) -> int:
    """Build every Lambda function's dependencies (what `make setup` runs)."""
    parser = argparse.ArgumentParser(prog="python -m stacks.lambda_deps", description=main.__doc__)
    parser.parse_args(argv)
    for deps in ALL:
        existed = (deps.directory() / "python").is_dir()
        try:
            path = deps.build()
        except MlhpcError as err:
            print(f"setup: {err.message}\n  fix: {err.fix}", file=sys.stderr)
            return 1
        if not existed:
            print(f"setup: {', '.join(deps.pins())} for {deps.python.runtime_name} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
