"""Run functions as Ray tasks on an embedded local runtime (or the cluster RAY_ADDRESS names)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any


def map_tasks(fn: Callable[..., Any], calls: Sequence[tuple[tuple, dict]], *, workers: int) -> list[Any]:
    """Return [fn(*args, **kwargs) for each call], run as Ray tasks with `workers` CPUs.

    A local runtime is started with num_cpus=workers (on loopback, no dashboard) when none is running;
    with RAY_ADDRESS set the tasks go to that cluster instead.
    """
    import ray

    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        else:
            from workloads.common import local_ray

            local_ray.init(num_cpus=workers, log_to_driver=False, configure_logging=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(fn)
        return ray.get([remote.remote(*args, **kwargs) for args, kwargs in calls])
    finally:
        if started:
            ray.shutdown()
