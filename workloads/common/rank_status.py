"""How a launcher tells what became of a rank: its exit code, the signal that ended it, a frozen process.

The Batch node launcher (:mod:`workloads.common.batch_launch`) and the local Ray runner report a
failed job the same way, from these words: ``rank 1 was killed by SIGKILL``, ``rank 0 exited 1``,
``rank 1 is frozen (stopped by a signal)``.
"""

from __future__ import annotations

import signal
from pathlib import Path


def exit_status(returncode: int) -> int:
    """Return a process's status as a shell reports it: the code, or 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def describe(returncode: int) -> str:
    """Return what a return code (a Popen's: negative for a signal) says about the process, in words."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited {returncode}"


def is_frozen(pid: int) -> bool:
    """Return True when the process is stopped by a signal (SIGSTOP, SIGTSTP) or a tracer (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state follows the command name in parentheses, which may itself hold spaces or parentheses.
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("T", "t")


FROZEN = "is frozen (stopped by a signal; it would never answer its collectives)"
