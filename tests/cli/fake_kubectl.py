#!/usr/bin/env python3
"""A kubectl stand-in that answers the verbs the eks backend uses as the real one does.

State lives in ``$FAKE_KUBECTL_STATE`` (JSON). What it plays, from the Kubernetes API's documented
behaviour: ``apply -f -`` prints ``<kind>.<group>/<name> created|configured|unchanged``; a Job it
holds starts (``status.active``, ``startTime``) on the first read and completes (a ``Complete``
condition, ``succeeded``, ``completionTime``) on the third, unless it is suspended first, which stops
its pods and adds a ``Suspended`` condition; ``logs job/NAME`` prints the pod's lines so far, or fails
while no pod has started; an object it lacks answers ``Error from server (NotFound)`` with exit 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

STATE = Path(os.environ["FAKE_KUBECTL_STATE"])
T0 = "2026-12-02T10:00:00Z"
RESOURCE = {"Job": "job.batch", "Service": "service"}


def load() -> dict[str, dict]:
    return json.loads(STATE.read_text()) if STATE.is_file() else {}


def save(state: dict[str, dict]) -> None:
    STATE.write_text(json.dumps(state))


def option(args: list[str], flag: str, default: str = "") -> str:
    return args[args.index(flag) + 1] if flag in args else default


def not_found(kind: str, name: str) -> int:
    print(f'Error from server (NotFound): {kind} "{name}" not found', file=sys.stderr)
    return 1


def main(args: list[str]) -> int:
    with (STATE.parent / "calls.log").open("a") as log:
        log.write(json.dumps(args) + "\n")
    state = load()
    verb = args[0]
    if verb == "apply":
        out = []
        for obj in yaml.safe_load_all(sys.stdin.read()):
            meta = obj["metadata"]
            key = f"{obj['kind']}/{meta.get('namespace', 'default')}/{meta['name']}"
            old = state.get(key)
            word = "created" if old is None else "unchanged" if old["spec"] == obj["spec"] else "configured"
            if old is None:
                obj["metadata"]["creationTimestamp"] = T0
                obj["metadata"]["uid"] = f"uid-{len(state)}"
                obj["status"], obj["reads"] = {}, 0
                state[key] = obj
            out.append(f"{RESOURCE[obj['kind']]}/{meta['name']} {word}")
        save(state)
        print("\n".join(out))
        return 0
    namespace = option(args, "-n", "default")
    if verb == "get" and args[1] == "job":
        key = f"Job/{namespace}/{args[2]}"
        if key not in state:
            return not_found("jobs.batch", args[2])
        job = state[key]
        job["reads"] += 1
        status = job["status"]
        if job["spec"].get("suspend"):
            status.pop("active", None)  # the controller deletes the pods of a suspended Job
            conditions = status.setdefault("conditions", [])
            if not any(c["type"] == "Suspended" for c in conditions):
                conditions.append(
                    {
                        "type": "Suspended",
                        "status": "True",
                        "reason": "JobSuspended",
                        "lastTransitionTime": T0,
                    }
                )
        elif job["reads"] >= 3:
            status.update(active=0, succeeded=1, completionTime="2026-12-02T10:01:30Z")
            status["conditions"] = [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-12-02T10:01:30Z"}
            ]
        else:
            status.update(active=1, startTime="2026-12-02T10:00:05Z")
        save(state)
        print(json.dumps({k: v for k, v in job.items() if k != "reads"}))
        return 0
    if verb == "logs":
        name = args[1].removeprefix("job/")
        job = state.get(f"Job/{namespace}/{name}")
        if job is None:
            return not_found("jobs.batch", name)
        if not job["status"].get("startTime"):
            print(
                f'Error from server (BadRequest): container in pod "{name}-abcde" is waiting to start',
                file=sys.stderr,
            )
            return 1
        print("\n".join(f"{name} line {i}" for i in range(1, job["reads"] + 1)))
        return 0
    if verb == "patch" and args[1] == "job":
        key = f"Job/{namespace}/{args[2]}"
        if key not in state:
            return not_found("jobs.batch", args[2])
        patch = json.loads(option(args, "-p"))
        job = state[key]
        job["metadata"].setdefault("annotations", {}).update(patch.get("metadata", {}).get("annotations", {}))
        job["spec"].update(patch.get("spec", {}))
        save(state)
        print(f"job.batch/{args[2]} patched")
        return 0
    print(f"fake kubectl: unsupported {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
