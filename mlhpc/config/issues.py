"""Problems found in a configuration file, and how they are reported to a person."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlhpc.errors import ECHO_LIMIT, KEY_LIMIT, MlhpcError, did_you_mean, echo, shorten

__all__ = ["ConfigError", "ConfigIssue", "Level", "did_you_mean", "format_path", "format_value", "path_part"]


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
        given = self.given()
        if given is not None:
            lines.append(f"    given: {given}")
        lines.append(f"    fix:   {self.fix}")
        return "\n".join(lines)

    def given(self) -> str | None:
        """Return the value as the 'given:' line shows it, or None: no value, or a long one the message shows.

        A short value is shown even when the message quotes it (it is the thing to compare with the
        fix); a long one is shown once, cut short, wherever it is.
        """
        if self.value is None:
            return None
        shown = format_value(self.value)
        if len(shown) > ECHO_LIMIT and shown[:ECHO_LIMIT] in self.message:
            return None
        return shown


@dataclass
class ConfigError(MlhpcError):
    """A config file that cannot be used, with every issue found in it (each issue carries its own fix)."""

    issues: Sequence[ConfigIssue]
    source: str | None = None
    warnings: Sequence[ConfigIssue] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # The dataclass __init__ replaces MlhpcError's; set what every MlhpcError carries.
        Exception.__init__(self, self.issues, self.source)
        self.message = str(self)
        self.fix = ""
        self.next_command = f"mlhpc validate {self.source or 'FILE'}"

    def __str__(self) -> str:
        count = len(self.issues)
        where = self.source or "the configuration"
        body = "\n".join(issue.render(self.source) for issue in self.issues)
        return f"{where}: {count} problem{'s' if count != 1 else ''} found\n{body}"


def format_value(value: Any) -> str:
    """Return a short, YAML-like rendering of a value for messages (long ones cut at ECHO_LIMIT)."""
    if isinstance(value, str):
        return echo(value)
    text = _render(value, ECHO_LIMIT + 1)
    return text if len(text) <= ECHO_LIMIT else f"{text[:ECHO_LIMIT]}…(cut short)"


def _render(value: Any, budget: int) -> str:
    """Render at most about `budget` characters: a huge list or string costs no more than a short one."""
    if isinstance(value, str):
        return repr(value[:budget])
    if isinstance(value, dict | list | tuple):
        items = list(
            itertools.islice(value.items(), 6) if isinstance(value, dict) else itertools.islice(value, 8)
        )
        parts: list[str] = []
        used = 0
        for item in items:
            if used > budget:
                break
            part = (
                f"{_render(item[0], budget)}: {_render(item[1], budget)}"
                if isinstance(value, dict)
                else _render(item, budget)
            )
            parts.append(part)
            used += len(part) + 2
        inner = ", ".join(parts)
        return "{" + inner + "}" if isinstance(value, dict) else "[" + inner + "]"
    try:
        return str(value)[: budget + 1]
    except ValueError:  # an int past Python's 4,300-digit conversion limit
        return (
            f"<a number of about {value.bit_length() * 3 // 10:,} digits>"
            if isinstance(value, int)
            else "<value>"
        )


def path_part(key: Any) -> str:
    """Return one key of a path as messages show it (a pasted paragraph as a key is cut short)."""
    return shorten(str(key), KEY_LIMIT)


def format_path(loc: Sequence[str | int]) -> str:
    """Turn a pydantic location tuple into 'a.b[0].c'."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{path_part(part)}" if out else path_part(part)
    return out
