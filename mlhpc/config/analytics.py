"""The analytics domain: EMR (Hive, Spark, Trino/Presto), its LDAP directory and TLS, and the ANA rules.

ANA005 reads ``network.nat_gateways``: it is an analytics rule because analytics is what needs egress.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from mlhpc.config.common import Section
from mlhpc.config.issues import ConfigIssue

if TYPE_CHECKING:
    from mlhpc.config.model import Config


_LDAP_NAME = r"^[a-z][a-z0-9_-]{1,31}$"
_DNS_ZONE = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.){1,4}[a-z]{2,63}$"
_S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+$"


class QueryEngine(StrEnum):
    """The SQL engine EMR runs next to Hive: Trino (EMR's 'trino') or PrestoDB (EMR's 'presto')."""

    TRINO = "trino"
    PRESTODB = "prestodb"


class EmrConfig(Section):
    """The EMR cluster: release, instance groups, scaling and idle auto-termination."""

    release_label: str = Field(
        default="emr-7.5.0", pattern=r"^emr-7\.\d{1,2}\.\d{1,2}$", description="An EMR 7.x release label."
    )
    query_engine: QueryEngine = QueryEngine.TRINO
    primary_instance_type: str = Field(default="m6i.xlarge", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    core_instance_type: str = Field(default="m6i.xlarge", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    core_instance_count: int = Field(default=2, ge=1, le=100)
    max_instance_count: int = Field(
        default=6,
        ge=2,
        le=200,
        description="Managed scaling ceiling: primary excluded, core + task instances.",
    )
    ebs_volume_gib: int = Field(default=64, ge=32, le=16384, description="gp3 data volume per instance.")
    idle_timeout_s: int = Field(
        default=3600, ge=60, le=604_800, description="Auto-terminate after this long without running work."
    )
    log_expiry_days: int = Field(default=30, ge=1, le=3650)


class LdapUserConfig(Section):
    """A directory user; the password is generated in Secrets Manager, never written anywhere."""

    name: str = Field(pattern=_LDAP_NAME, description="The uid, also the Trino/Hive user name.")
    groups: tuple[Annotated[str, Field(pattern=_LDAP_NAME)], ...] = ("analysts",)


class ExistingDirectoryConfig(Section):
    """A directory you already run (Active Directory, OpenLDAP): EMR authenticates against it over LDAPS."""

    url: str = Field(pattern=r"^ldaps://[A-Za-z0-9.-]+(:\d{1,5})?$", description="ldaps://host[:port] only.")
    user_bind_pattern: str = Field(
        description="DN of a user with ${USER} for the name, e.g. uid=${USER},ou=people,dc=corp,dc=example"
    )
    ca_certificate_s3_uri: str = Field(
        pattern=_S3_URI, description="PEM of the CA that signed the directory."
    )
    query_user_secret_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws[\w-]*:secretsmanager:")], ...] = ()


class LdapConfig(Section):
    """The directory HiveServer2 and Trino/Presto authenticate against: our OpenLDAP, or an existing one."""

    existing: ExistingDirectoryConfig | None = None
    instance_type: str = Field(default="t3.small", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    base_dn: str = Field(default="dc=mlhpc,dc=internal", pattern=r"^dc=[a-z0-9-]+(,dc=[a-z0-9-]+)*$")
    users: tuple[LdapUserConfig, ...] = Field(default=(LdapUserConfig(name="studio-user"),), min_length=1)
    groups: tuple[Annotated[str, Field(pattern=_LDAP_NAME)], ...] = ("analysts",)
    query_group: str = Field(
        default="analysts",
        pattern=_LDAP_NAME,
        description="Only members may use HiveServer2 and Trino/Presto.",
    )


class TlsConfig(Section):
    """In-transit TLS for EMR: a PEM zip you provide, or a generated self-signed one (not for production)."""

    certificate_bundle_s3_uri: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+\.zip$",
        description="EMR PEM zip (privateKey.pem, certificateChain.pem, trustedCertificates.pem); "
        "unset: a self-signed bundle is generated at deploy time.",
    )
    ca_certificate_s3_uri: str | None = Field(
        default=None, pattern=_S3_URI, description="PEM of the CA of that bundle, for clients (Studio)."
    )


class AnalyticsConfig(Section):
    """AnalyticsStack: EMR with Hive, Spark and Trino/Presto on the Glue catalog, LDAP over TLS."""

    enabled: bool = Field(
        default=False, description="EMR and LDAP cost money while they run; off by default."
    )
    dns_zone: str = Field(
        default="analytics.mlhpc.internal",
        pattern=_DNS_ZONE,
        description="Private hosted zone: ldap.<zone> and query.<zone> (the TLS names clients use).",
    )
    emr: EmrConfig = EmrConfig()
    ldap: LdapConfig = LdapConfig()
    tls: TlsConfig = TlsConfig()
    airports_prefix: str = Field(
        default="tables/airports/",
        pattern=r"^[a-z0-9][a-z0-9_/-]*/$",
        description="Prefix in the datasets bucket holding the airports CSV (sample or full).",
    )


# --- rules ------------------------------------------------------------------------------------


def ldap_directory(config: Config) -> Iterator[ConfigIssue]:
    """ANA001-ANA004: users, groups and the query group of the managed directory must agree."""
    ana = config.analytics
    ldap = ana.ldap
    if not ana.enabled or ldap.existing is not None:
        return
    seen: set[str] = set()
    for index, user in enumerate(ldap.users):
        if user.name in seen:
            yield ConfigIssue(
                code="ANA004",
                path=f"analytics.ldap.users[{index}].name",
                value=user.name,
                message=f"user '{user.name}' is listed twice; each uid is one directory entry and one secret",
                fix="list each user once",
            )
        seen.add(user.name)
        for group in user.groups:
            if group not in ldap.groups:
                yield ConfigIssue(
                    code="ANA001",
                    path=f"analytics.ldap.users[{index}].groups",
                    value=list(user.groups),
                    message=f"user '{user.name}' is in group '{group}', which analytics.ldap.groups does not list",
                    fix=f"add '{group}' to analytics.ldap.groups, or remove it from the user's groups",
                )
    members = {group for user in ldap.users for group in user.groups}
    for index, group in enumerate(ldap.groups):
        if group not in members:
            yield ConfigIssue(
                code="ANA002",
                path=f"analytics.ldap.groups[{index}]",
                value=group,
                message=f"group '{group}' has no member; an LDAP groupOfNames needs at least one",
                fix=f"add '{group}' to some user's groups, or remove it from analytics.ldap.groups",
            )
    if ldap.query_group not in ldap.groups:
        yield ConfigIssue(
            code="ANA003",
            path="analytics.ldap.query_group",
            value=ldap.query_group,
            message=f"query group '{ldap.query_group}' is not one of analytics.ldap.groups, so nobody could query",
            fix=f"set query_group to one of: {', '.join(ldap.groups) or '(add a group first)'}",
        )


def analytics_network(config: Config) -> Iterator[ConfigIssue]:
    """ANA005/ANA006: EMR and the LDAP host need egress; a real TLS bundle needs its CA for clients."""
    ana = config.analytics
    if not ana.enabled:
        return
    if config.network.nat_gateways == 0:
        yield ConfigIssue(
            code="ANA005",
            path="network.nat_gateways",
            value=0,
            message="analytics is enabled but the private subnets have no NAT gateway: the LDAP host cannot "
            "install slapd and EMR cannot reach its service endpoints",
            fix="set network.nat_gateways: 1 (or more), or set analytics.enabled: false",
        )
    tls = ana.tls
    if (tls.certificate_bundle_s3_uri is None) != (tls.ca_certificate_s3_uri is None):
        yield ConfigIssue(
            code="ANA006",
            path="analytics.tls",
            value={k: v for k, v in tls.model_dump().items() if v},
            message="a TLS bundle and the PEM of its CA go together: clients (Studio, Data Wrangler) verify "
            "the coordinator with the CA",
            fix="set both certificate_bundle_s3_uri and ca_certificate_s3_uri, or neither (self-signed)",
        )
