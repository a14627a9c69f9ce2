"""The Inf1 image runs Python 3.10 (torch-neuron has no 3.11 wheels): the code it copies must run there.

Under the machine's python3.10 (skipped where there is none): every file the BERT image copies
compiles, none takes a 3.11-only name from the standard library, and mlhpc.compat's StrEnum prints
and formats as 3.11's does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.emulate.conftest import REPO
from tests.invocation.test_images import _copied_files


def _python310() -> str | None:
    """Return a working python3.10: on PATH, or one of pyenv's versions (its shim alone may refuse)."""
    import glob
    import os

    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for candidate in [
        shutil.which("python3.10"),
        *sorted(glob.glob(f"{root}/versions/3.10*/bin/python3.10")),
    ]:
        if candidate:
            ran = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
            if ran.returncode == 0 and ran.stdout.startswith("Python 3.10"):
                return candidate
    return None


PYTHON310 = _python310()
pytestmark = pytest.mark.skipif(PYTHON310 is None, reason="no python3.10 on this machine")
# standard-library names that appeared in 3.11 (what the code here could reach for)
NEW_IN_311 = re.compile(
    r"from enum import .*StrEnum|import tomllib|from typing import .*\bSelf\b|datetime\.UTC\b|except\*"
)


def _version() -> str:
    out = subprocess.run([str(PYTHON310), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or out.stderr.strip()


def test_the_inf1_image_code_compiles_under_python_3_10(tmp_path: Path) -> None:
    assert _version().startswith("Python 3.10"), _version()
    files = sorted(f for f in _copied_files(REPO / "workloads" / "bert" / "Dockerfile") if f.endswith(".py"))
    assert "mlhpc/compat.py" in files and "workloads/bert/server.py" in files
    compiled = subprocess.run(
        [str(PYTHON310), "-c", "import sys, py_compile; [py_compile.compile(f, doraise=True, cfile=sys.argv[1] + '/x.pyc') for f in sys.argv[2:]]", str(tmp_path), *files],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    offenders = [
        f
        for f in files
        if f != "mlhpc/compat.py" and NEW_IN_311.search((REPO / f).read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_strenum_under_3_10_prints_and_formats_as_its_value() -> None:
    code = (
        "from mlhpc.compat import StrEnum\n"
        "class K(StrEnum):\n    A = 'batch'\n"
        "assert str(K.A) == 'batch' and f'{K.A}' == 'batch' and f'{K.A:>6}' == ' batch' and K.A == 'batch'\n"
        "assert K('batch') is K.A and isinstance(K.A, str)\n"
    )
    ran = subprocess.run([str(PYTHON310), "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
