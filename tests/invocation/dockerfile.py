"""The contract's view of a Dockerfile: ENTRYPOINT and CMD in exec form (parsing: mlhpc.emulate.image)."""

from __future__ import annotations

from pathlib import Path

from mlhpc.emulate import image


def entrypoint_and_cmd(path: Path) -> tuple[list[str] | None, list[str] | None]:
    """Return the final stage's ENTRYPOINT and CMD (None where the stage sets none); refuse the shell form."""
    parsed = image.read(path)
    if parsed.shell_form:
        raise AssertionError(
            f"{path}: {', '.join(parsed.shell_form)} in shell form; the contract needs the exec form"
        )
    return parsed.entrypoint, parsed.cmd


def container_argv(path: Path, command: list[str] | None) -> list[str]:
    """Return what the container runtime runs: ENTRYPOINT + (the command given, else the image's CMD)."""
    return image.read(path).argv(command)
