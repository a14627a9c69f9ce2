"""Read a Dockerfile's ENTRYPOINT and CMD as the image builder does (exec form; last one of the final stage)."""

from __future__ import annotations

import json
import re
from pathlib import Path


def instructions(path: Path) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def entrypoint_and_cmd(path: Path) -> tuple[list[str] | None, list[str] | None]:
    """Return the final stage's ENTRYPOINT and CMD (None where the stage sets none).

    A new FROM starts a stage afresh. Setting ENTRYPOINT resets a CMD inherited from the base
    image (python:*-slim has CMD ["python3"]), so a stage without its own CMD has none.
    """
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    for word, rest in instructions(path):
        if word == "FROM":
            entrypoint = cmd = None
        elif word in ("ENTRYPOINT", "CMD"):
            if not re.match(r"^\[.*\]$", rest):
                raise AssertionError(
                    f"{path}: {word} {rest} is in shell form; the contract needs the exec form"
                )
            value = [str(v) for v in json.loads(rest)]
            if word == "ENTRYPOINT":
                entrypoint = value
            else:
                cmd = value
    return entrypoint, cmd


def container_argv(path: Path, command: list[str] | None) -> list[str]:
    """Return what the container runtime runs: ENTRYPOINT + (the command given, else the image's CMD)."""
    entrypoint, cmd = entrypoint_and_cmd(path)
    return [*(entrypoint or []), *(command if command is not None else (cmd or []))]
