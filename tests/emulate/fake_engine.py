"""A stand-in for `docker`/`podman` that plays the two calls the emulator makes, as the engine does.

* ``image inspect REF``: exit 0 when REF is among the images of ``$FAKE_ENGINE_IMAGES`` (JSON: ref ->
  the image config's Entrypoint, Env, WorkingDir), else exit 1 with "No such image".
* ``run --rm --name N --network host [--shm-size S] (-e NAME)... (-v LOCAL:PATH)... REF CMD...``: the
  container's process is the image's Entrypoint + CMD, with only the image's Env and the ``-e`` names'
  values (taken from this client's environment, as ``docker run -e NAME`` does). A volume's container
  path stands for its local directory (a mount needs root here): each argument and value naming it is
  rewritten. Every call is appended to ``$FAKE_ENGINE_LOG`` (JSON lines of argv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _rewrite(value: str, volumes: dict[str, str]) -> str:
    for path, local in sorted(volumes.items(), key=lambda kv: -len(kv[0])):
        if value == path or value.startswith(path.rstrip("/") + "/"):
            return local + value[len(path.rstrip("/")) :]
    return value


def main(argv: list[str]) -> int:
    with open(os.environ["FAKE_ENGINE_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    images = json.loads(os.environ.get("FAKE_ENGINE_IMAGES", "{}"))
    if argv[:2] == ["image", "inspect"]:
        if argv[2] in images:
            return 0
        print(f"Error: No such image: {argv[2]}", file=sys.stderr)
        return 1
    if argv[:1] != ["run"]:
        print(f"fake engine: unsupported call {argv}", file=sys.stderr)
        return 125
    rest, names, volumes = argv[1:], [], {}
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--rm":
            continue
        value = rest.pop(0)
        if flag == "-e":
            names.append(value)
        elif flag == "-v":
            local, _, path = value.partition(":")
            volumes[path] = local
        elif flag not in ("--name", "--network", "--shm-size"):
            print(f"fake engine: unknown flag {flag}", file=sys.stderr)
            return 125
    ref, command = rest[0], rest[1:]
    config = images[ref]
    env = {"PATH": os.environ["PATH"], **config.get("Env", {})}
    env.update({name: os.environ[name] for name in names if name in os.environ})
    env = {k: _rewrite(v, volumes) for k, v in env.items()}
    process = [_rewrite(a, volumes) for a in [*config["Entrypoint"], *command]]
    if process[:1] == ["python"]:
        process[0] = sys.executable
    return subprocess.call(process, env=env, cwd=config.get("WorkingDir") or None)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
