"""Problems found in a configuration file, and how they are reported to a person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlhpc.errors import did_you_mean

__all__ = ["ConfigError", "ConfigIssue", "Level", "did_you_mean", "format_path", "format_value"]


class Level(StrEnum):
    """How serious an issue is: errors stop synthesis, warnings and infos do not."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file: where, what was given, what is allowed, how to fix it."""

    path: str
    message: str
    fix: str
    value: Any = None
    code: str = "SCHEMA"
    level: Level = Level.ERROR
    line: int | None = None

    def location(self, source: str | None = None) -> str:
        """Return 'file:line path' (or the parts that are known)."""
        where = f"{source}:{self.line}" if source and self.line else (source or "")
        return f"{where} {self.path}".strip() if self.path else where

    def render(self, source: str | None = None) -> str:
        """Return the issue as plain text lines, the form used in logs and tests."""
        head = f"{self.level.value.upper()} [{self.code}] {self.location(source)}: {self.message}"
        lines = [head]
        if self.value is not None:
            lines.append(f"    given: {format_value(self.value)}")
        lines.append(f"    fix:   {self.fix}")
        return "\n".join(lines)


@dataclass
class ConfigError(Exception):
    """A config file that cannot be used, with every issue found in it."""

    issues: Sequence[ConfigIssue]
    source: str | None = None
    warnings: Sequence[ConfigIssue] = field(default_factory=tuple)

    def __str__(self) -> str:
        count = len(self.issues)
        where = self.source or "the configuration"
        body = "\n".join(issue.render(self.source) for issue in self.issues)
        return f"{where}: {count} problem{'s' if count != 1 else ''} found\n{body}"


def format_value(value: Any) -> str:
    """Return a short, YAML-like rendering of a value for messages."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in list(value.items())[:6]) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in list(value)[:8]) + "]"
    return str(value)


def format_path(loc: Sequence[str | int]) -> str:
    """Turn a pydantic location tuple into 'a.b[0].c'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
