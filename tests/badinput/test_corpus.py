"""Every bad input of the corpus exits 1 with a message naming the problem, no traceback, nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlhpc_app.cli.main import EXIT_BUG, app
from tests.badinput.cases import CASES, GROUPS, Case


def listing(root: Path) -> dict[str, str]:
    """Return every path under root with what it is: a directory, a link's target, a file's hash."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = f"link -> {path.readlink()}"
        elif path.is_dir():
            found[name] = "dir"
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_the_corpus_covers_every_group_with_enough_cases() -> None:
    assert len(CASES) >= 80
    assert all(len(cases) >= 3 for cases in GROUPS.values())
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    if case.setup is not None:
        case.setup(work)
    before = listing(work)

    result = CliRunner().invoke(app, list(case.argv))
    output = result.stdout + result.stderr

    # Exit 1 through the CLI's own error path: CliRunner reports an escaped exception as exit 1
    # too, so the exception must be the SystemExit the error table raises.
    assert isinstance(result.exception, SystemExit), (result.exception, output[-3000:])
    assert result.exit_code == 1, output[-3000:]
    assert result.exit_code != EXIT_BUG
    for words in case.expect:
        assert words in output, f"{words!r} not in:\n{output[-3000:]}"
    assert "Traceback" not in output and "hit a bug" not in output, output[-3000:]
    assert len(output) <= case.max_output, f"{len(output):,} characters of output"
    if case.once is not None:
        assert output.count(case.once) <= 1, "a long value is printed once at most"
    assert listing(work) == before, "nothing was written, moved or changed"
