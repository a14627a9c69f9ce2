"""Checks the rule packs miss, run over synthesized CloudFormation templates.

Each check is a function ``(template) -> list[Finding]`` with a stable code:

* ``IMDS001`` every launch template requires IMDSv2 (``HttpTokens: required``);
* ``SEC001`` no literal that looks like a password, secret or access key;
* ``S3001`` every bucket blocks all four kinds of public access;
* ``S3002`` every bucket has a policy denying requests without TLS;
* ``IAM001`` every statement of an IAM identity policy has a ``Sid``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Template = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One violation: which check, which resource, what is wrong."""

    code: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.resource}: {self.message}"


def _resources(template: Template, *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not types or resource.get("Type") in types:
            yield logical_id, resource


# --- IMDSv2 ------------------------------------------------------------------------------------


def check_imdsv2(template: Template) -> list[Finding]:
    """IMDS001: launch templates and launch configurations must require session tokens (IMDSv2)."""
    findings = []
    for logical_id, res in _resources(template, "AWS::EC2::LaunchTemplate"):
        options = ((res.get("Properties") or {}).get("LaunchTemplateData") or {}).get("MetadataOptions") or {}
        if options.get("HttpTokens") != "required":
            findings.append(
                Finding(
                    "IMDS001", logical_id, "launch template does not set MetadataOptions.HttpTokens: required"
                )
            )
    for logical_id, res in _resources(template, "AWS::AutoScaling::LaunchConfiguration"):
        options = (res.get("Properties") or {}).get("MetadataOptions") or {}
        if options.get("HttpTokens") != "required":
            findings.append(Finding("IMDS001", logical_id, "launch configuration does not require IMDSv2"))
    for logical_id, res in _resources(template, "AWS::EC2::Instance"):
        if not (res.get("Properties") or {}).get("LaunchTemplate"):
            findings.append(
                Finding("IMDS001", logical_id, "instance has no launch template, so nothing requires IMDSv2")
            )
    return findings


# --- secrets -----------------------------------------------------------------------------------

_SECRET_KEY = re.compile(r"(passw(or)?d|passwd|secret(?!s?manager)|api[_-]?key|private[_-]?key|token)", re.I)
_SAFE_SECRET_KEYS = re.compile(
    r"(SecretArn|SecretId|SecretName|SecretsManager|SecretString(Template)?|GenerateSecretString|"
    r"PasswordLength|PasswordPolicy|ExcludeCharacters|GenerateStringKey|TokenKey|HttpTokens|"
    r"HttpPutResponseHopLimit|ExcludePunctuation|RequireEachIncludedType|IncludeSpace|KmsKeyId|"
    r"RequireSecureTransport|SecretOptions|ValueFrom|PasswordParameter|SecretsManagerSecret|"
    # Trino/Presto's password-authenticator.properties: the value names the plugin ('ldap').
    r"password-authenticator\.name)$"
)
_PATTERNS = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a PEM private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a password assignment": re.compile(
        # (?<!:) skips ARNs, whose resource type ':secret:' is a name, not an assignment.
        r"(?i)(?<!:)\b(password|passwd|pwd|secret)\b\s*[:=]\s*['\"]?(?!\$|\{\{resolve:|<|%)[^\s'\"$]{4,}"
    ),
}
# Passwords from public examples and defaults that must never appear anywhere.
KNOWN_WEAK = ("welcome123", "password123", "changeme", "Passw0rd", "admin123", "P@ssw0rd")


def _is_literal(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield (path, text) for every string in a template subtree, decoding Fn::Base64 literals."""
    if isinstance(node, str):
        yield path, node
        try:
            decoded = base64.b64decode(node, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return
        if len(node) >= 16 and all(c.isprintable() or c in "\n\r\t" for c in decoded):
            yield f"{path}(base64)", decoded
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")


def _secret_keys(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) where a key named like a secret holds a literal value."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if _SECRET_KEY.search(str(key)) and not _SAFE_SECRET_KEYS.search(str(key)) and _is_literal(value):
                yield here, value
            yield from _secret_keys(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _secret_keys(value, f"{path}[{index}]")


def check_no_secrets(template: Template) -> list[Finding]:
    """SEC001: no password, secret or key literal; secrets come from Secrets Manager references."""
    findings = []
    for logical_id, res in _resources(template):
        props = res.get("Properties") or {}
        for path, value in _secret_keys(props, "Properties"):
            findings.append(
                Finding(
                    "SEC001", logical_id, f"{path} holds a literal ({str(value)[:3]}...); reference a secret"
                )
            )
        for path, text in _strings(props, "Properties"):
            for what, pattern in _PATTERNS.items():
                if pattern.search(text):
                    findings.append(Finding("SEC001", logical_id, f"{path} contains {what}"))
            for weak in KNOWN_WEAK:
                if weak.lower() in text.lower():
                    findings.append(
                        Finding("SEC001", logical_id, f"{path} contains the known password '{weak}'")
                    )
    for key, output in (template.get("Outputs") or {}).items():
        for path, text in _strings(output.get("Value"), f"Outputs.{key}"):
            if _PATTERNS["a password assignment"].search(text) or any(
                w.lower() in text.lower() for w in KNOWN_WEAK
            ):
                findings.append(Finding("SEC001", key, f"{path} exposes a password-like value"))
    return findings


# --- S3 ----------------------------------------------------------------------------------------


def _ref_target(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = (document or {}).get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    condition = statement.get("Condition") or {}
    for operator in ("Bool", "BoolIfExists"):
        value = (condition.get(operator) or {}).get("aws:SecureTransport")
        if str(value).lower() == "false":
            return True
    return False


def check_buckets(template: Template) -> list[Finding]:
    """S3001/S3002: buckets block public access and their policies deny non-TLS requests."""
    findings = []
    tls_enforced: set[str] = set()
    for _logical_id, res in _resources(template, "AWS::S3::BucketPolicy"):
        props = res.get("Properties") or {}
        target = _ref_target(props.get("Bucket"))
        if target and any(_denies_insecure_transport(s) for s in _statements(props.get("PolicyDocument"))):
            tls_enforced.add(target)
    for logical_id, res in _resources(template, "AWS::S3::Bucket"):
        block = (res.get("Properties") or {}).get("PublicAccessBlockConfiguration") or {}
        flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        missing = [flag for flag in flags if block.get(flag) is not True]
        if missing:
            findings.append(
                Finding("S3001", logical_id, f"public access not fully blocked: {', '.join(missing)}")
            )
        if logical_id not in tls_enforced:
            findings.append(
                Finding(
                    "S3002", logical_id, "no bucket policy denies requests with aws:SecureTransport false"
                )
            )
    return findings


# --- IAM ---------------------------------------------------------------------------------------


def check_statement_sids(template: Template) -> list[Finding]:
    """IAM001: every statement of an identity policy carries a Sid saying what it is for."""
    findings = []
    documents: list[tuple[str, Any]] = []
    for logical_id, res in _resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        documents.append((logical_id, (res.get("Properties") or {}).get("PolicyDocument")))
    for logical_id, res in _resources(template, "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for policy in (res.get("Properties") or {}).get("Policies") or []:
            documents.append((logical_id, policy.get("PolicyDocument")))
    for logical_id, document in documents:
        for index, statement in enumerate(_statements(document)):
            if not statement.get("Sid"):
                actions = statement.get("Action")
                findings.append(Finding("IAM001", logical_id, f"statement {index} ({actions}) has no Sid"))
    return findings


CHECKS: tuple[Callable[[Template], list[Finding]], ...] = (
    check_imdsv2,
    check_no_secrets,
    check_buckets,
    check_statement_sids,
)


def run_checks(template: Template) -> list[Finding]:
    """Run every check over one template and return all findings."""
    return [finding for check in CHECKS for finding in check(template)]
