"""Run the external checkers (cfn-lint, checkov) and read cdk-nag's report, as plain findings."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlhpc_app.guardrails.template_checks import Finding

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV_SKIPS = Path(__file__).with_name("checkov_skips.yaml")

# CloudFormation service quotas that synthesis must stay under.
MAX_TEMPLATE_BYTES = 1_000_000  # template body uploaded through S3 (CDK's bootstrap bucket)
MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200


class ToolMissing(RuntimeError):
    """A checker is not installed; `make setup` installs it."""


# --- cdk-nag --------------------------------------------------------------------------------


def nag_findings(cdk_out: Path) -> tuple[list[Finding], list[dict[str, str]]]:
    """Return (unacknowledged findings, acknowledged ones with reasons) from validation-report.json."""
    report = cdk_out / "validation-report.json"
    if not report.is_file():
        raise FileNotFoundError(f"{report} not found: synthesize with cdk-nag registered (stacks.assembly)")
    data = json.loads(report.read_text(encoding="utf-8"))
    open_, acknowledged = [], []
    for plugin in data.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                open_.append(
                    Finding(
                        violation["ruleName"], construct["constructPath"], violation.get("description", "")
                    )
                )
        for violation in plugin.get("suppressedViolations", []):
            for construct in violation.get("violatingConstructs", []):
                acknowledged.append(
                    {
                        "rule": violation["ruleName"],
                        "resource": construct["constructPath"],
                        "reason": violation.get("reason", ""),
                    }
                )
    return open_, acknowledged


# --- limits ---------------------------------------------------------------------------------


def limit_findings(template_path: Path) -> list[Finding]:
    """Findings for a template over CloudFormation's size, resource, output or parameter limits."""
    size = template_path.stat().st_size
    template = json.loads(template_path.read_text(encoding="utf-8"))
    name = template_path.name
    findings = []
    checks = (
        ("bytes", size, MAX_TEMPLATE_BYTES),
        ("resources", len(template.get("Resources", {})), MAX_RESOURCES),
        ("outputs", len(template.get("Outputs", {})), MAX_OUTPUTS),
        ("parameters", len(template.get("Parameters", {})), MAX_PARAMETERS),
    )
    for what, count, limit in checks:
        if count > limit:
            findings.append(Finding("LIMIT", name, f"{count} {what}, over CloudFormation's limit of {limit}"))
    return findings


# --- cfn-lint -------------------------------------------------------------------------------


def _tool(name: str, *candidates: Path) -> str:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"{name} is not installed; run `make setup`")


def cfn_lint_findings(templates: list[Path]) -> list[Finding]:
    """Run cfn-lint over templates; every error and warning is a finding (informational ones are not)."""
    if not templates:
        return []
    exe = _tool("cfn-lint", Path(sys.executable).with_name("cfn-lint"))
    proc = subprocess.run(
        [exe, "--format", "json", "--", *map(str, templates)], capture_output=True, text=True, check=False
    )
    if proc.returncode not in (0, 2, 4, 6, 8, 10, 12, 14):
        raise RuntimeError(f"cfn-lint failed to run (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    results = json.loads(proc.stdout or "[]")
    findings = []
    for item in results:
        if item.get("Level") not in ("Error", "Warning"):
            continue
        path = "/".join(str(p) for p in item.get("Location", {}).get("Path", [])[:2])
        findings.append(
            Finding(
                item["Rule"]["Id"], f"{Path(item['Filename']).name}:{path}", item.get("Message", "")[:300]
            )
        )
    return findings


# --- checkov --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    """A checkov check we accept on matching resources, with the reason."""

    check: str
    resources: tuple[str, ...]
    reason: str
    templates: tuple[str, ...] = ("*",)  # template file names (globs) the skip applies to

    def matches(self, check_id: str, resource: str, template: str = "") -> bool:
        """True when this skip covers a failed check on a resource ('Type.LogicalId') in a template file."""
        return (
            check_id == self.check
            and any(fnmatch.fnmatch(resource, pattern) for pattern in self.resources)
            and any(fnmatch.fnmatch(template, pattern) for pattern in self.templates)
        )


def load_skips(path: Path = CHECKOV_SKIPS) -> list[Skip]:
    """Read the checkov skip list; every entry must give a check, resource patterns and a reason."""
    text = path.read_text(encoding="utf-8")
    entries = yaml.safe_load(text) or []
    declared = sum(1 for line in text.splitlines() if line.startswith("- check:"))
    if declared != len(entries) or text.count("\n  resources:") != len(entries):
        raise ValueError(f"{path}: every entry needs exactly one '- check:' and one 'resources:' line")
    skips = []
    for index, entry in enumerate(entries):
        reason = str(entry.get("reason", "")).strip()
        if not entry.get("check") or not entry.get("resources") or len(reason) < 20:
            raise ValueError(
                f"{path} entry {index}: needs check, resources and a reason of a sentence or more"
            )
        templates = tuple(entry.get("templates") or ("*",))
        skips.append(
            Skip(
                check=entry["check"], resources=tuple(entry["resources"]), reason=reason, templates=templates
            )
        )
    return skips


def checkov_findings(
    templates: list[Path], skips: list[Skip] | None = None
) -> tuple[list[Finding], list[Finding]]:
    """Run checkov (CloudFormation framework); return (failed findings, skipped findings)."""
    if not templates:
        return [], []
    skips = load_skips() if skips is None else skips
    exe = _tool("checkov", REPO_ROOT / ".venv-checkov" / "bin" / "checkov")
    args = [
        exe,
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
    ]
    for template in templates:
        args += ["--file", str(template)]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed to run (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
    output: Any = json.loads(proc.stdout or "[]")
    reports = output if isinstance(output, list) else [output]
    failed: list[Finding] = []
    skipped: list[Finding] = []
    for report in reports:
        if "results" not in report:
            continue
        for check in report["results"].get("failed_checks", []):
            resource = check.get("resource", "")
            file = Path(check.get("file_path", "")).name
            finding = Finding(check["check_id"], f"{file}:{resource}", check.get("check_name", ""))
            covered = any(s.matches(check["check_id"], resource, file) for s in skips)
            (skipped if covered else failed).append(finding)
    return failed, skipped
