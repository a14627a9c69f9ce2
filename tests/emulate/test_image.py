"""Dockerfile reading: the final stage's ENTRYPOINT, CMD, WORKDIR, USER and ENV, exec and shell forms."""

from __future__ import annotations

from mlhpc_app.emulate.image import parse

MULTI_STAGE = """
FROM python:3.11 AS build
WORKDIR /build
ENV A=1
ENTRYPOINT ["never"]
FROM python:3.11-slim
ENV BASE=/opt \\
    APP=${BASE}/app
# a comment between instructions
WORKDIR $APP
WORKDIR sub
ENV LEGACY value with spaces
USER 1000:1000
CMD ["--default"]
ENTRYPOINT ["python", "-m", "workloads.x"]
"""


def test_final_stage_only_and_entrypoint_resets_cmd() -> None:
    img = parse(MULTI_STAGE)
    assert img.entrypoint == ["python", "-m", "workloads.x"]
    assert img.cmd is None  # ENTRYPOINT after CMD resets it
    assert img.workdir == "/opt/app/sub"
    assert img.user == "1000:1000"
    assert img.env == {"BASE": "/opt", "APP": "/opt/app", "LEGACY": "value with spaces"}
    assert img.argv(["--out", "x"]) == ["python", "-m", "workloads.x", "--out", "x"]


def test_command_replaces_cmd_and_shell_form_runs_through_sh() -> None:
    img = parse('FROM x\nENTRYPOINT ["tini", "--"]\nCMD ["serve"]\n')
    assert img.argv(None) == ["tini", "--", "serve"]
    assert img.argv(["train"]) == ["tini", "--", "train"]
    shell = parse("FROM x\nCMD echo $HOME\n")
    assert shell.argv(None) == ["/bin/sh", "-c", "echo $HOME"]
    assert shell.shell_form == ("CMD",)
