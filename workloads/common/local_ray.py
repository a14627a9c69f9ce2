"""Start an embedded Ray runtime that lives on loopback only (the local runner's, a local task pool's).

On Linux Ray resolves its node address to the host's outward address, even when told 127.0.0.1
(``ray._private.services.resolve_ip_for_localhost``), and its raylet, GCS and worker servers listen
on every interface: a laptop running ``mlhpc run`` would offer them to its whole network. Ray
binds loopback only when its "no cluster" switch, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, is set
(its default on Windows and macOS); a runtime that must serve other machines is a Ray cluster, which
``RAY_ADDRESS`` names instead.
"""

from __future__ import annotations

import os
from typing import Any

LOOPBACK = "127.0.0.1"
# Read by every Ray process when it imports ray (the driver, and the raylet and workers it starts).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def init(**options: Any) -> None:
    """Call ray.init(**options) for a runtime bound to loopback, without the dashboard."""
    os.environ.update(LOOPBACK_ENV)
    import ray
    from ray._private import ray_constants

    # ray_constants read the switch when ray was first imported; a process that imported ray earlier
    # (a test session, a notebook) holds the old value, which decides the driver's node address.
    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(include_dashboard=False, _node_ip_address=LOOPBACK, **options)


def node_address() -> str:
    """Return the address the running runtime's (first) node registered with."""
    import ray

    return str(ray.nodes()[0]["NodeManagerAddress"])
