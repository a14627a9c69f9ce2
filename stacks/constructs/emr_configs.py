"""EMR configuration classifications: Glue as metastore, LDAPS for HiveServer2 and Trino/Presto.

Pure functions over plain values, so tests can read every property the cluster gets and
the LDAP tests can run the very group filter Trino/Presto will send to slapd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlhpc.config.analytics import ExistingDirectoryConfig, QueryEngine

GLUE_CLIENT_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
# Where the bootstrap action puts the directory's CA (also imported into every JDK trust store).
LDAP_CA_PATH = "/etc/pki/ca-trust/source/anchors/mlhpc-ldap-ca.pem"
# EMR's HTTPS coordinator port once in-transit encryption is on (EMR Release Guide, Presto/Trino).
TRINO_HTTPS_PORT = 8446
HIVESERVER2_PORT = 10000
LDAPS_PORT = 636
# EMR's application names and classification prefixes per engine.
ENGINES: dict[QueryEngine, tuple[str, str]] = {
    QueryEngine.TRINO: ("Trino", "trino"),
    QueryEngine.PRESTODB: ("Presto", "presto"),
}


@dataclass(frozen=True)
class Directory:
    """How HiveServer2 and Trino/Presto find and check a user in LDAP (``${USER}`` is Trino's placeholder)."""

    url: str
    user_bind_pattern: str
    group_auth_pattern: str | None = None
    user_base_dn: str | None = None
    query_group: str | None = None
    group_base_dn: str | None = None

    @property
    def hive_user_dn_pattern(self) -> str:
        """Return the bind pattern in HiveServer2's syntax (``%s`` for the user)."""
        return self.user_bind_pattern.replace("${USER}", "%s")


def managed_directory(*, host: str, base_dn: str, query_group: str) -> Directory:
    """Describe the directory ldap-bootstrap.sh builds: people and groupOfNames groups under base_dn."""
    people = f"ou=people,{base_dn}"
    return Directory(
        url=f"ldaps://{host}:{LDAPS_PORT}",
        user_bind_pattern=f"uid=${{USER}},{people}",
        # Searched with the user's own bind (no service account): a hit means membership.
        group_auth_pattern=f"(&(objectClass=groupOfNames)(cn={query_group})(member=uid=${{USER}},{people}))",
        user_base_dn=base_dn,
        query_group=query_group,
        group_base_dn=f"ou=groups,{base_dn}",
    )


def existing_directory(config: ExistingDirectoryConfig) -> Directory:
    """Describe a directory from config: bind pattern only (its group layout is unknown to us)."""
    return Directory(url=config.url, user_bind_pattern=config.user_bind_pattern)


def _classification(name: str, properties: dict[str, str]) -> dict[str, Any]:
    return {"classification": name, "configurationProperties": properties}


def hive_site(directory: Directory) -> dict[str, str]:
    """Return hive-site: the Glue Data Catalog as metastore, HiveServer2 authenticating with LDAPS."""
    props = {
        "hive.metastore.client.factory.class": GLUE_CLIENT_FACTORY,
        "hive.server2.authentication": "LDAP",
        "hive.server2.authentication.ldap.url": directory.url,
        "hive.server2.authentication.ldap.userDNPattern": directory.hive_user_dn_pattern,
    }
    if directory.query_group and directory.group_base_dn:
        props |= {
            "hive.server2.authentication.ldap.groupDNPattern": f"cn=%s,{directory.group_base_dn}",
            "hive.server2.authentication.ldap.groupFilter": directory.query_group,
            "hive.server2.authentication.ldap.groupClassKey": "groupOfNames",
            "hive.server2.authentication.ldap.groupMembershipKey": "member",
        }
    return props


def password_authenticator(directory: Directory) -> dict[str, str]:
    """Return the Trino/Presto LDAP password authenticator (ldaps:// only; the CA from the bootstrap action)."""
    props = {
        "password-authenticator.name": "ldap",
        "ldap.url": directory.url,
        "ldap.user-bind-pattern": directory.user_bind_pattern,
        "ldap.ssl.truststore.path": LDAP_CA_PATH,
    }
    if directory.group_auth_pattern and directory.user_base_dn:
        props |= {
            "ldap.user-base-dn": directory.user_base_dn,
            "ldap.group-auth-pattern": directory.group_auth_pattern,
        }
    return props


def emr_configurations(*, engine: QueryEngine, directory: Directory) -> list[dict[str, Any]]:
    """Return the cluster's configuration classifications (CloudFormation's Configurations shape)."""
    prefix = ENGINES[engine][1]
    return [
        _classification("hive-site", hive_site(directory)),
        _classification("spark-hive-site", {"hive.metastore.client.factory.class": GLUE_CLIENT_FACTORY}),
        _classification(f"{prefix}-connector-hive", {"hive.metastore": "glue"}),
        # PASSWORD needs HTTPS: the coordinator serves it on 8446 from the in-transit TLS bundle.
        _classification(f"{prefix}-config", {"http-server.authentication.type": "PASSWORD"}),
        _classification(f"{prefix}-password-authenticator", password_authenticator(directory)),
    ]


def trino_jdbc_url(*, engine: QueryEngine, host: str) -> str:
    """Return the JDBC URL of the coordinator (TLS, the hive catalog)."""
    scheme = "trino" if engine is QueryEngine.TRINO else "presto"
    return f"jdbc:{scheme}://{host}:{TRINO_HTTPS_PORT}/hive/default?SSL=true"


def hive_jdbc_url(*, host: str) -> str:
    """Return the HiveServer2 JDBC URL (TLS from EMR's in-transit encryption)."""
    return f"jdbc:hive2://{host}:{HIVESERVER2_PORT}/default;ssl=true"
