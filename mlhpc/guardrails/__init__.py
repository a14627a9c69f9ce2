"""Guardrails every synthesized template must pass: cdk-nag, cfn-lint, checkov, our checks, limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mlhpc.guardrails.template_checks import Finding, run_checks
from mlhpc.guardrails.tools import cfn_lint_findings, checkov_findings, limit_findings, nag_findings

GUARDS = ("cdk-nag", "cfn-lint", "checkov", "mlhpc", "limits")


@dataclass
class StackReport:
    """Guardrail results of one stack's template."""

    stack: str
    template: Path
    resources: int
    size_bytes: int
    findings: dict[str, list[Finding]] = field(default_factory=lambda: {g: [] for g in GUARDS})
    acknowledged: dict[str, int] = field(default_factory=lambda: {g: 0 for g in GUARDS})

    @property
    def passed(self) -> bool:
        """True when no guard reported anything unacknowledged."""
        return not any(self.findings.values())


@dataclass
class GuardrailReport:
    """Guardrail results for every stack in a cloud assembly."""

    cdk_out: Path
    stacks: list[StackReport]
    acknowledged_nag: list[dict[str, str]]

    @property
    def passed(self) -> bool:
        """True when every stack passed every guard."""
        return all(s.passed for s in self.stacks)

    def failures(self) -> list[str]:
        """Return every unacknowledged finding as 'Stack guard: finding' lines."""
        return [
            f"{s.stack} {guard}: {f}" for s in self.stacks for guard, fs in s.findings.items() for f in fs
        ]


def _stack_of_construct_path(path: str) -> str:
    return path.split("/", 1)[0]


def templates_in(cdk_out: Path) -> dict[str, Path]:
    """Return {stack artifact id: template path} from a cloud assembly's manifest."""
    manifest = json.loads((cdk_out / "manifest.json").read_text(encoding="utf-8"))
    found = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") == "aws:cloudformation:stack":
            found[artifact_id] = cdk_out / artifact["properties"]["templateFile"]
    return dict(sorted(found.items()))


def run_guardrails(cdk_out: str | Path, *, checkov: bool = True) -> GuardrailReport:
    """Run every guard over a synthesized cloud assembly and return the per-stack report."""
    cdk_out = Path(cdk_out)
    templates = templates_in(cdk_out)
    reports = {}
    for stack, path in templates.items():
        template = json.loads(path.read_text(encoding="utf-8"))
        report = StackReport(
            stack=stack,
            template=path,
            resources=len(template.get("Resources", {})),
            size_bytes=path.stat().st_size,
        )
        report.findings["mlhpc"] = run_checks(template)
        report.findings["limits"] = limit_findings(path)
        reports[stack] = report

    open_nag, acknowledged = nag_findings(cdk_out)
    for finding in open_nag:
        stack = _stack_of_construct_path(finding.resource)
        if stack in reports:
            reports[stack].findings["cdk-nag"].append(finding)
    for ack in acknowledged:
        stack = _stack_of_construct_path(ack["resource"])
        if stack in reports:
            reports[stack].acknowledged["cdk-nag"] += 1

    by_file = {path.name: stack for stack, path in templates.items()}
    for finding in cfn_lint_findings(list(templates.values())):
        reports[by_file[finding.resource.split(":", 1)[0]]].findings["cfn-lint"].append(finding)
    if checkov:
        failed, skipped = checkov_findings(list(templates.values()))
        for finding in failed:
            reports[by_file[finding.resource.split(":", 1)[0]]].findings["checkov"].append(finding)
        for finding in skipped:
            reports[by_file[finding.resource.split(":", 1)[0]]].acknowledged["checkov"] += 1
    return GuardrailReport(cdk_out=cdk_out, stacks=list(reports.values()), acknowledged_nag=acknowledged)


__all__ = ["GUARDS", "Finding", "GuardrailReport", "StackReport", "run_guardrails", "templates_in"]
