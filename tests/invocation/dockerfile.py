"""The contract's view of a Dockerfile: ENTRYPOINT and CMD in exec form (parsing: mlhpc_app.emulate.image)."""

from __future__ import annotations

import json
from pathlib import Path

from mlhpc_app.emulate import image


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


def copied_sources(path: Path) -> list[str]:
    """Return the build-context sources the final stage COPYs (exec or plain form; --from copies excluded)."""
    sources: list[str] = []
    for word, rest in image.instructions(path.read_text(encoding="utf-8")):
        if word == "FROM":
            sources = []
        elif word in ("COPY", "ADD"):
            words = json.loads(rest) if rest.startswith("[") else rest.split()
            flags = [w for w in words if w.startswith("--")]
            if any(f.startswith("--from") for f in flags):
                continue
            *srcs, _dest = [w for w in words if not w.startswith("--")]
            sources += srcs
    return sources
