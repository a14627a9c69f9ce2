"""What the images' oldest Python lacks: the Inf1 image runs Python 3.10 (torch-neuron has no 3.11 wheels).

``StrEnum`` is the standard library's from Python 3.11; on 3.10 a ``str``/``Enum`` mix that prints and
formats as its value, as 3.11's does. Every module an image copies takes it from here.
"""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):  # noqa: UP036 - the Inf1 image runs 3.10, below the project minimum
    from enum import StrEnum
else:  # pragma: no cover - exercised under python3.10 by tests/invocation/test_python310.py

    class StrEnum(str, enum.Enum):  # noqa: UP042 - enum.StrEnum is what 3.10 lacks
        """An enum whose members are strings and print as their value (enum.StrEnum of Python 3.11)."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, format_spec: str) -> str:
            return str(self.value).__format__(format_spec)


__all__ = ["StrEnum"]
