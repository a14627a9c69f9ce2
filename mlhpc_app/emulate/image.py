"""Read a workload image's Dockerfile as the builder does: ENTRYPOINT, CMD, WORKDIR, USER and ENV of the final stage.

Only what the container runtime uses when it starts the image is read; RUN, COPY and the base
image are not (the emulator runs in the project's own environment). Rules followed (Dockerfile
reference):

* a new ``FROM`` starts a stage afresh; the last stage is the image;
* ENTRYPOINT and CMD take the exec form (a JSON array) or the shell form (``/bin/sh -c TEXT``);
  setting ENTRYPOINT resets a CMD inherited from the base image, so a stage without its own CMD
  has none;
* ``WORKDIR`` relative to the previous one; ``ENV k=v k2=v2`` and the legacy ``ENV k v``, with
  ``$VAR``/``${VAR}`` of earlier ENV lines expanded;
* the runtime runs ENTRYPOINT + (the command given, else CMD): the job's command replaces CMD;
  a Kubernetes container's ``command`` replaces ENTRYPOINT and its ``args`` CMD
  (:meth:`Image.kubernetes_argv`).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mlhpc.errors import MlhpcError
from mlhpc.spec import WorkloadSpec

SHELL = ["/bin/sh", "-c"]


@dataclass(frozen=True)
class Image:
    """What an image's config says about starting it."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    workdir: str = "/"
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    shell_form: tuple[str, ...] = ()  # the instructions written in shell form

    def argv(self, command: list[str] | None) -> list[str]:
        """Return what the runtime runs: ENTRYPOINT + (the command given, else the image's CMD)."""
        return [*(self.entrypoint or []), *(command if command is not None else (self.cmd or []))]

    def kubernetes_argv(self, command: list[str] | None, args: list[str] | None) -> list[str]:
        """Return what a Kubernetes container runs: ``command`` replaces ENTRYPOINT, ``args`` replaces CMD.

        As the kubelet reads them, an empty list is no list: ``command: []`` keeps the ENTRYPOINT. Given
        ``command`` and no ``args``, the image's CMD is dropped too (it belonged to the ENTRYPOINT replaced).
        """
        if command:
            return [*command, *(args or [])]
        return [*(self.entrypoint or []), *(args if args else (self.cmd or []))]


def instructions(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines inside a continuation are dropped too, as the builder does
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    if pending:
        word, _, rest = pending.strip().partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def _expand(text: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        return env.get(match.group(1) or match.group(2), "")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)


def _command(rest: str) -> tuple[list[str], bool]:
    """Return (argv, shell form?) of an ENTRYPOINT/CMD argument."""
    if re.match(r"^\[.*\]$", rest):
        try:
            return [str(v) for v in json.loads(rest)], False
        except json.JSONDecodeError:
            pass  # not valid JSON: the builder takes it as shell form
    return [*SHELL, rest], True


def _env_pairs(rest: str, env: dict[str, str]) -> dict[str, str]:
    words = shlex.split(rest, posix=True)
    if words and "=" not in words[0]:
        # legacy form: ENV key value with spaces
        key, _, value = rest.partition(" ")
        return {key: _expand(value.strip(), env)}
    pairs: dict[str, str] = {}
    for word in words:
        key, _, value = word.partition("=")
        pairs[key] = _expand(value, {**env, **pairs})
    return pairs


def parse(text: str) -> Image:
    """Return the final stage's start-up configuration from Dockerfile text."""
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    workdir = "/"
    user: str | None = None
    env: dict[str, str] = {}
    shell: list[str] = []
    for word, rest in instructions(text):
        if word == "FROM":
            entrypoint = cmd = user = None
            workdir, env, shell = "/", {}, []
        elif word in ("ENTRYPOINT", "CMD"):
            value, is_shell = _command(rest)
            if is_shell:
                shell.append(word)
            if word == "ENTRYPOINT":
                entrypoint, cmd = value, None
            else:
                cmd = value
        elif word == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, _expand(rest, env)))
        elif word == "USER":
            user = _expand(rest, env)
        elif word == "ENV":
            env.update(_env_pairs(rest, env))
    return Image(entrypoint=entrypoint, cmd=cmd, workdir=workdir, user=user, env=env, shell_form=tuple(shell))


def read(path: Path) -> Image:
    """Return the start-up configuration of the image a Dockerfile builds."""
    return parse(path.read_text(encoding="utf-8"))


def dockerfile(repo: Path, workload: str) -> Path:
    """Return the path of a workload's Dockerfile."""
    return repo / "workloads" / workload / "Dockerfile"


class ImageNotBuilt(MlhpcError):
    """The container engine has no such image."""


def local_reference(spec: WorkloadSpec) -> str:
    """Return the tag the Dockerfile's build line gives the image here (``mlhpc/<name>:latest``)."""
    return f"{spec.image}:latest"


def require_local_image(engine: str, reference: str) -> tuple[str, str]:
    """Return (the engine's path, the reference) once the engine says it holds the image."""
    import subprocess

    from mlhpc.errors import EngineUnavailable
    from mlhpc_app.engine import EngineName, find_engine

    try:
        name = EngineName(engine)
    except ValueError:
        raise EngineUnavailable(
            f"unknown container engine {engine!r}",
            fix=f"use one of: {', '.join(e.value for e in EngineName)}",
        ) from None
    found = find_engine(name)
    assert found is not None  # find_engine raises for an engine asked for by name and not installed
    inspected = subprocess.run(
        [found.path, "image", "inspect", reference], capture_output=True, text=True, check=False
    )
    if inspected.returncode != 0:
        workload = reference.rsplit("/", maxsplit=1)[-1].partition(":")[0]
        raise ImageNotBuilt(
            f"{engine} has no image {reference}",
            fix=f"build it from the repository root: {engine} build -f workloads/{workload}/Dockerfile "
            f"-t {reference} .",
        )
    return found.path, reference
