"""The container engine on this machine (docker, podman or finch): build, log in, push.

All three take the same ``build -f``, ``login --username --password-stdin`` and ``push``
arguments. The registry password is written to the engine's stdin only: it never appears
in an argument list, and any line of engine output that echoes it is masked.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mlhpc.errors import EngineFailed, EngineUnavailable

# mlhpc/ and workloads/ sit side by side at the repository root, the build context of every image.
REPO_ROOT = Path(__file__).resolve().parents[1]


class EngineName(StrEnum):
    """The container engines mlhpc can drive, in the order it looks for them."""

    DOCKER = "docker"
    PODMAN = "podman"
    FINCH = "finch"


def find_engine(name: EngineName | None = None) -> Engine | None:
    """Return the engine asked for, else the first of docker, podman, finch on PATH (None: none found).

    An engine asked for by name but not installed raises EngineUnavailable.
    """
    if name is not None:
        path = shutil.which(name.value)
        if path is None:
            raise EngineUnavailable(
                f"--engine {name.value} was asked for, but `{name.value}` is not on PATH",
                fix=f"install {name.value}, choose another engine (--engine docker|podman|finch), or build "
                "in the account with --in-account",
            )
        return Engine(name, path)
    for candidate in EngineName:
        path = shutil.which(candidate.value)
        if path is not None:
            return Engine(candidate, path)
    return None


def dockerfile(workload: str, root: Path | None = None) -> Path:
    """Return a workload's Dockerfile relative to the root; raise EngineFailed when it has none."""
    root = root or REPO_ROOT
    relative = Path("workloads") / workload / "Dockerfile"
    if not (root / relative).is_file():
        raise EngineFailed(
            f"{workload} has no Dockerfile ({root / relative})",
            fix=f"add workloads/{workload}/Dockerfile (see workloads/pinn/Dockerfile), then build again",
        )
    return relative


Echo = Callable[[str], None]


@dataclass(frozen=True)
class Engine:
    """A container engine found on this machine."""

    name: EngineName
    path: str

    def _run(self, args: Sequence[str], *, what: str, echo: Echo, cwd: Path, stdin: str | None = None,
             secret: str = "", fix: str = "") -> None:  # fmt: skip
        """Run the engine, echoing its output line by line (masking ``secret``); raise EngineFailed."""

        def mask(line: str) -> str:
            return line.replace(secret, "***") if secret else line

        try:
            proc = subprocess.Popen(
                [self.path, *args],
                cwd=cwd,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        except OSError as err:
            raise EngineFailed(
                f"could not start {self.name.value}: {err}", fix="check the engine runs"
            ) from None
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        assert proc.stdout is not None
        last: list[str] = []
        for raw in proc.stdout:
            line = mask(raw.rstrip("\n"))
            last = [*last[-19:], line]
            echo(line)
        code = proc.wait()
        if code != 0:
            tail = last[-1] if last else "(no output)"
            raise EngineFailed(
                f"{self.name.value} {what} failed (exit {code}): {tail}",
                fix=fix
                or f"read the {self.name.value} output above; is the engine running (`{self.name.value} info`)?",
            )

    def build(
        self,
        *,
        dockerfile: Path,
        reference: str,
        echo: Echo,
        root: Path | None = None,
        variant: str | None = None,
    ) -> list[str]:
        """Build the image from the repository root (a variant: its VARIANT build argument); return the arguments."""
        chosen = ["--build-arg", f"VARIANT={variant}"] if variant else []
        args = ["build", "-f", str(dockerfile), *chosen, "-t", reference, "."]
        self._run(args, what="build", echo=echo, cwd=root or REPO_ROOT)
        return args

    def login(self, *, username: str, password: str, registry: str, echo: Echo) -> list[str]:
        """Log in to a registry with the password on stdin; return the arguments used (no password)."""
        args = ["login", "--username", username, "--password-stdin", registry]
        self._run(args, what="login", echo=echo, cwd=REPO_ROOT, stdin=password, secret=password)
        return args

    def push(self, *, reference: str, echo: Echo, fix: str = "") -> list[str]:
        """Push the image; return the arguments used."""
        args = ["push", reference]
        self._run(args, what="push", echo=echo, cwd=REPO_ROOT, fix=fix)
        return args
