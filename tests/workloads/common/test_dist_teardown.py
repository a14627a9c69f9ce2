"""A rank that leaves its process group keeps none of gloo's threads, whatever it imported meanwhile.

CI saw finished gloo ranks end in std::terminate (SIGABRT, 134) at exit, now and then: the default
group outlived destroy_process_group, held by a torch module imported after the rank joined
(``torch.distributed.nn.functional`` binds ``group.WORLD`` as a default argument, and torch imports it
with torch._dynamo, i.e. with the first optimizer), so gloo's threads ran on into interpreter
finalization. Whether one of them then touches Python is a matter of scheduling; whether they are
still there is not, so that is what these tests check.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.common.dist import BINDS_WORLD_AT_IMPORT, NOT_PRELOADED

# gloo's transport loop and ProcessGroupGloo's workers, as the kernel names them (/proc/self/task/*/comm)
GLOO_THREADS = ("gloo_tcp_loop", "pt_gloo_runloop")

_CHILD = """
import json, os, sys
import torch
from workloads.common import dist
dist.init_process_group(dist.Rendezvous(), backend="gloo", timeout_s=30)
torch.distributed.all_reduce(torch.ones(4))
import torch._dynamo  # what building the first torch.optim optimizer imports
torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
during = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
dist.leave()
after = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
print(json.dumps({"during": during, "after": after}))
"""


def _fresh_python(code: str, *, timeout_s: float) -> object:
    """Run code in a new interpreter (nothing imported yet) from the repository; return its last stdout
    line, parsed as JSON."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc thread names")
def test_leaving_the_group_stops_gloos_threads_after_torch_dynamo_was_imported() -> None:
    threads = _fresh_python(_CHILD, timeout_s=120)
    assert isinstance(threads, dict)
    # the check can fail: while joined, the threads are there
    assert any(name in threads["during"] for name in GLOO_THREADS), threads
    assert not [name for name in threads["after"] if name in GLOO_THREADS], threads


def _binds_world_at_import(source: str) -> bool:
    """Return True if a function in source has a default argument of ``[dist.]group.WORLD`` (or
    ``GroupMember.WORLD``), which Python evaluates once, when the module is imported."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if (
                    isinstance(default, ast.Attribute)
                    and default.attr == "WORLD"
                    and isinstance(default.value, (ast.Name, ast.Attribute))
                    and (default.value.id if isinstance(default.value, ast.Name) else default.value.attr)
                    in ("group", "GroupMember")
                ):
                    return True
    return False


def test_every_torch_module_that_binds_the_world_group_at_import_is_known() -> None:
    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    torch_root = Path(spec.origin).parent
    found = set()
    for path in (torch_root / "distributed").rglob("*.py"):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "WORLD" in text and _binds_world_at_import(text):
            module = ".".join(path.relative_to(torch_root.parent).with_suffix("").parts)
            found.add(module.removesuffix(".__init__"))
    # distributed_c10d binds them while torch.distributed itself is imported: before any group exists
    found.discard("torch.distributed.distributed_c10d")
    known = set(BINDS_WORLD_AT_IMPORT) | set(NOT_PRELOADED)
    assert "torch.distributed.nn.functional" in found  # the scan finds the one that bit us
    assert found <= known, (
        f"torch modules binding group.WORLD at import that dist.py does not know: {sorted(found - known)}; "
        "add them to BINDS_WORLD_AT_IMPORT (or to NOT_PRELOADED, with the reason)"
    )


def test_the_modules_not_preloaded_are_imported_by_no_workload() -> None:
    from workloads.registry import all_specs

    packages = sorted({spec.module for spec in all_specs().values()})
    child = (
        "import importlib, json, pkgutil, sys\n"
        "import torch._dynamo, torch.optim, torch.nn.parallel\n"
        f"for package in {packages!r}:\n"
        "    path = importlib.import_module(package).__path__\n"
        "    for info in pkgutil.walk_packages(path, package + '.'):\n"
        "        leaf = info.name.rsplit('.', 1)[-1]\n"
        "        if leaf != '__main__' and not leaf.startswith('bench'):\n"
        "            importlib.import_module(info.name)\n"
        f"print(json.dumps(sorted(m for m in {sorted(NOT_PRELOADED)!r} if m in sys.modules)))\n"
    )
    assert _fresh_python(child, timeout_s=300) == []
