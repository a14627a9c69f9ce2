"""Guardrails every synthesized template must pass: cdk-nag, cfn-lint, checkov, our checks, limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mlhpc_app.guardrails.template_checks import Finding, run_checks
from mlhpc_app.guardrails.tools import cfn_lint_findings, checkov_findings, limit_findings, nag_findings

GUARDS = ("cdk-nag", "cfn-lint", "checkov", "mlhpc", "limits")


@dataclass
class StackReport:
    """Guardrail results of one stack's template."""

    stack: str
    template: Path
    resources: int
    size_bytes: int
    nested: list[Path] = field(
        default_factory=list
    )  # nested stacks' templates, checked as part of this stack
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


def nested_templates_of(cdk_out: Path, stack: str) -> list[Path]:
    """Return the templates of a stack's nested stacks (file assets of the stack named *.nested.template.json).

    Constructs such as aws-eks put their providers in nested stacks; those templates are deployed
    with the parent, so every guard checks them as part of it.
    """
    assets = cdk_out / f"{stack}.assets.json"
    if not assets.is_file():
        return []
    files = json.loads(assets.read_text(encoding="utf-8")).get("files", {})
    paths = {entry["source"].get("path", "") for entry in files.values()}
    return sorted(cdk_out / p for p in paths if p.endswith(".nested.template.json"))


def _in_nested(path: Path, findings: list[Finding]) -> list[Finding]:
    """Prefix each finding's resource with the nested template it was found in."""
    name = path.name.removesuffix(".nested.template.json")
    return [Finding(f.code, f"{name}/{f.resource}", f.message) for f in findings]


def run_guardrails(cdk_out: str | Path, *, checkov: bool = True) -> GuardrailReport:
    """Run every guard over a synthesized cloud assembly (nested stacks included); return the per-stack report."""
    cdk_out = Path(cdk_out)
    templates = templates_in(cdk_out)
    reports = {}
    by_file = {}
    for stack, path in templates.items():
        template = json.loads(path.read_text(encoding="utf-8"))
        report = StackReport(
            stack=stack,
            template=path,
            resources=len(template.get("Resources", {})),
            size_bytes=path.stat().st_size,
            nested=nested_templates_of(cdk_out, stack),
        )
        report.findings["mlhpc"] = run_checks(template)
        report.findings["limits"] = limit_findings(path)
        for nested in report.nested:
            inner = json.loads(nested.read_text(encoding="utf-8"))
            report.resources += len(inner.get("Resources", {}))
            report.findings["mlhpc"] += _in_nested(nested, run_checks(inner))
            report.findings["limits"] += _in_nested(nested, limit_findings(nested))
            by_file[nested.name] = stack
        reports[stack] = report
        by_file[path.name] = stack
    every_template = [path for stack in reports.values() for path in (stack.template, *stack.nested)]

    open_nag, acknowledged = nag_findings(cdk_out)
    for finding in open_nag:
        stack = _stack_of_construct_path(finding.resource)
        if stack in reports:
            reports[stack].findings["cdk-nag"].append(finding)
    for ack in acknowledged:
        stack = _stack_of_construct_path(ack["resource"])
        if stack in reports:
            reports[stack].acknowledged["cdk-nag"] += 1

    for finding in cfn_lint_findings(every_template):
        reports[by_file[finding.resource.split(":", 1)[0]]].findings["cfn-lint"].append(finding)
    if checkov:
        failed, skipped = checkov_findings(every_template)
        for finding in failed:
            reports[by_file[finding.resource.split(":", 1)[0]]].findings["checkov"].append(finding)
        for finding in skipped:
            reports[by_file[finding.resource.split(":", 1)[0]]].acknowledged["checkov"] += 1
    return GuardrailReport(cdk_out=cdk_out, stacks=list(reports.values()), acknowledged_nag=acknowledged)


__all__ = [
    "GUARDS",
    "Finding",
    "GuardrailReport",
    "StackReport",
    "nested_templates_of",
    "run_guardrails",
    "templates_in",
]
