"""Analytics and Studio config: off by default, and every ANA/STU rule with its exact message and fix."""

from __future__ import annotations

import pytest

from mlhpc.config import Config, ConfigError, Level, parse_config

ON = "analytics:\n  enabled: true\n"


def test_costly_sections_are_off_by_default() -> None:
    assert Config().analytics.enabled is False
    assert Config().studio.enabled is False
    assert Config().analytics.emr.release_label.startswith("emr-7.")


# Each row: YAML, path, exact message, exact fix.
ERRORS = [
    (
        ON + "  ldap:\n    users: [{name: alice, groups: [ops]}]\n",
        "analytics.ldap.users[0].groups",
        "user 'alice' is in group 'ops', which analytics.ldap.groups does not list",
        "add 'ops' to analytics.ldap.groups, or remove it from the user's groups",
    ),
    (
        ON + "  ldap:\n    groups: [analysts, ops]\n",
        "analytics.ldap.groups[1]",
        "group 'ops' has no member; an LDAP groupOfNames needs at least one",
        "add 'ops' to some user's groups, or remove it from analytics.ldap.groups",
    ),
    (
        ON + "  ldap:\n    query_group: ops\n",
        "analytics.ldap.query_group",
        "query group 'ops' is not one of analytics.ldap.groups, so nobody could query",
        "set query_group to one of: analysts",
    ),
    (
        ON + "  ldap:\n    users: [{name: alice}, {name: alice}]\n",
        "analytics.ldap.users[1].name",
        "user 'alice' is listed twice; each uid is one directory entry and one secret",
        "list each user once",
    ),
    (
        "network:\n  nat_gateways: 0\n" + ON,
        "network.nat_gateways",
        "analytics is enabled but the private subnets have no NAT gateway: the LDAP host cannot install slapd "
        "and EMR cannot reach its service endpoints",
        "set network.nat_gateways: 1 (or more), or set analytics.enabled: false",
    ),
    (
        ON + "  tls:\n    certificate_bundle_s3_uri: s3://pki-bucket/emr/bundle.zip\n",
        "analytics.tls",
        "a TLS bundle and the PEM of its CA go together: clients (Studio, Data Wrangler) verify the coordinator "
        "with the CA",
        "set both certificate_bundle_s3_uri and ca_certificate_s3_uri, or neither (self-signed)",
    ),
    (
        "network:\n  nat_gateways: 0\n  interface_endpoints: [sts, logs]\nstudio:\n  enabled: true\n",
        "network.interface_endpoints",
        "a VPC-only Studio domain calls sagemaker.api, sagemaker.runtime; without a NAT gateway it cannot reach them",
        "add sagemaker.api, sagemaker.runtime to network.interface_endpoints",
    ),
    (
        ON + "  emr:\n    release_label: emr-6.15.0\n",
        "analytics.emr.release_label",
        "'emr-6.15.0' is not allowed for release_label",
        "use an EMR 7.x release label.",
    ),
    (
        ON
        + "  ldap:\n    existing:\n      url: ldap://dc.corp.example\n      user_bind_pattern: uid=${USER},dc=corp\n"
        "      ca_certificate_s3_uri: s3://pki-bucket/ca.pem\n",
        "analytics.ldap.existing.url",
        "'ldap://dc.corp.example' is not allowed for url",
        "use ldaps://host[:port] only.",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "message", "fix"), ERRORS, ids=[r[1] + str(i) for i, r in enumerate(ERRORS)]
)
def test_errors_name_the_path_message_and_fix(text: str, path: str, message: str, fix: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bad.yaml")
    issues = [i for i in caught.value.issues if i.path == path]
    assert issues, [(i.path, i.message) for i in caught.value.issues]
    assert issues[0].message.startswith(message)
    if fix is not None:
        assert issues[0].fix == fix


def test_studio_without_analytics_is_a_warning() -> None:
    _, notes = parse_config("studio:\n  enabled: true\n")
    (note,) = [n for n in notes if n.code == "STU001"]
    assert note.level is Level.WARNING
    assert note.message == "Studio is enabled without analytics: the domain has no EMR cluster to query"


def test_missing_studio_endpoints_with_nat_is_only_a_note() -> None:
    _, notes = parse_config("network:\n  interface_endpoints: [sts]\nstudio:\n  enabled: true\n" + ON)
    (note,) = [n for n in notes if n.code == "STU002"]
    assert note.level is Level.INFO
    assert note.fix == "add sagemaker.api, sagemaker.runtime, logs to network.interface_endpoints"


def test_an_existing_directory_skips_the_managed_directory_rules() -> None:
    config, _ = parse_config(
        ON + "  ldap:\n    groups: [nobody-here]\n    existing:\n      url: ldaps://dc.corp.example:636\n"
        "      user_bind_pattern: uid=${USER},ou=people,dc=corp\n      ca_certificate_s3_uri: s3://pki-bucket/ca.pem\n"
    )
    assert config.analytics.ldap.existing is not None
