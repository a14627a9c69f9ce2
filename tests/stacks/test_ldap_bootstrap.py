"""The LDAP host's bootstrap script, run for real: slapd on loopback, binds over LDAPS with ldap3.

The script under test is stacks/assets/ldap/ldap-bootstrap.sh, the file the EC2 instance
downloads and runs. Only `aws` is replaced (a stand-in on PATH that answers
`secretsmanager get-secret-value` from a JSON file), and apt and systemd are skipped
(LDAP_INSTALL=0, LDAP_SERVICE=none): the test starts slapd itself on free loopback ports.

Needs the Debian packages: apt-get install -y slapd ldap-utils
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacks.constructs.emr_configs import managed_directory

ldap3 = pytest.importorskip("ldap3")

SCRIPT = Path(__file__).resolve().parents[2] / "stacks" / "assets" / "ldap" / "ldap-bootstrap.sh"
SLAPD = shutil.which("slapd") or ("/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else None)
pytestmark = [
    pytest.mark.skipif(
        SLAPD is None or (shutil.which("slapadd") is None and not Path("/usr/sbin/slapadd").exists()),
        reason="slapd is not installed; install it with: apt-get install -y slapd ldap-utils",
    ),
    # ldap3 2.9.1 (the last release) still calls ssl.match_hostname; the check itself still runs.
    pytest.mark.filterwarnings("ignore:ssl.match_hostname:DeprecationWarning"),
]

BASE_DN = "dc=mlhpc,dc=internal"
HOST = "localhost"  # the certificate is issued for the name clients connect to
FAKE_AWS = """#!{python}
import json, os, sys
args = sys.argv[1:]
assert args[:2] == ["secretsmanager", "get-secret-value"], args
assert args[args.index("--query") + 1] == "SecretString" and args[args.index("--output") + 1] == "text"
sys.stdout.write(json.load(open(os.environ["FAKE_SECRETS"]))[args[args.index("--secret-id") + 1]] + "\\n")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_dn(uid: str) -> str:
    return f"uid={uid},ou=people,{BASE_DN}"


def run_bootstrap(tmp: Path, secrets_map: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the bootstrap script with the stand-in `aws` and the given variables."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "aws"
    fake.write_text(FAKE_AWS.format(python=sys.executable), encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    (tmp / "secrets.json").write_text(json.dumps(secrets_map), encoding="utf-8")
    sbin = "/usr/sbin:/sbin"
    variables = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}:{sbin}",
        "FAKE_SECRETS": str(tmp / "secrets.json"),
        "LDAP_ROOT": str(tmp / "root"),
        "LDAP_OWNER": subprocess.run(
            ["id", "-un"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "LDAP_BASE_DN": BASE_DN,
        "LDAP_HOSTNAME": HOST,
        "LDAP_ADMIN_SECRET": "arn:admin",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=variables, capture_output=True, text=True, timeout=120, check=False
    )


def secret(uid: str, password: str) -> str:
    """Return a secret in the shape the stack generates (Data Wrangler's: username, password, jdbcURL)."""
    return json.dumps({"username": uid, "password": password, "jdbcURL": "jdbc:trino://query:8446/hive"})


@dataclass
class Directory:
    """A running slapd configured by the script, and what the test needs to talk to it."""

    root: Path
    ldaps_port: int
    plain_port: int
    passwords: dict[str, str]

    @property
    def ca_file(self) -> str:
        return str(self.root / "etc" / "ldap" / "tls" / "ca.pem")

    def server(self, host: str = HOST) -> ldap3.Server:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file)
        return ldap3.Server(host, port=self.ldaps_port, use_ssl=True, tls=tls, connect_timeout=5)

    def bind(self, dn: str, password: str) -> ldap3.Connection:
        conn = ldap3.Connection(self.server(), user=dn, password=password, receive_timeout=5)
        conn.bind()
        return conn


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    tmp = tmp_path_factory.mktemp("ldap")
    # What Secrets Manager's GenerateSecretString would make (32 characters, no punctuation).
    passwords = {uid: secrets.token_urlsafe(24) for uid in ("admin", "studio-user", "data-engineer")}
    proc = run_bootstrap(
        tmp,
        {f"arn:{uid}": secret(uid, pw) for uid, pw in passwords.items()},
        LDAP_GROUPS="analysts engineers",
        LDAP_USERS="studio-user:analysts data-engineer:engineers",
        LDAP_USER_SECRETS="studio-user=arn:studio-user data-engineer=arn:data-engineer",
    )
    assert proc.returncode == 0, proc.stderr
    ldaps_port, plain_port = free_port(), free_port()
    config_dir = tmp / "root" / "etc" / "ldap" / "slapd.d"
    # The production listener is ldaps:/// only; the plain listener here exists to show that
    # even where one is opened, slapd refuses a password sent without TLS.
    urls = f"ldaps://127.0.0.1:{ldaps_port}/ ldap://127.0.0.1:{plain_port}/"
    log = (tmp / "slapd.log").open("w")
    process = subprocess.Popen(
        [str(SLAPD), "-d", "0", "-F", str(config_dir), "-h", urls], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", ldaps_port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"slapd did not start: {(tmp / 'slapd.log').read_text()[-2000:]}")
            time.sleep(0.1)
    try:
        yield Directory(root=tmp / "root", ldaps_port=ldaps_port, plain_port=plain_port, passwords=passwords)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_ldaps_bind_succeeds_with_the_generated_password(directory: Directory) -> None:
    conn = directory.bind(user_dn("studio-user"), directory.passwords["studio-user"])
    assert conn.bound, conn.result
    assert conn.extend.standard.who_am_i() == f"dn:{user_dn('studio-user')}"


def test_ldaps_bind_fails_with_a_wrong_password(directory: Directory) -> None:
    conn = directory.bind(user_dn("studio-user"), directory.passwords["studio-user"] + "x")
    assert not conn.bound
    assert conn.result["description"] == "invalidCredentials"


def test_one_users_password_does_not_open_another_account(directory: Directory) -> None:
    conn = directory.bind(user_dn("data-engineer"), directory.passwords["studio-user"])
    assert conn.result["description"] == "invalidCredentials"


def test_anonymous_bind_is_refused(directory: Directory) -> None:
    conn = ldap3.Connection(directory.server(), receive_timeout=5)
    assert not conn.bind()
    assert conn.result["description"] == "inappropriateAuthentication"
    assert conn.result["message"] == "anonymous bind disallowed"
    # Without a bind, nothing can be read either (olcRequires: authc).
    assert not conn.search(BASE_DN, "(objectClass=*)")
    assert conn.result["description"] == "unwillingToPerform"


def test_plain_ldap_without_tls_is_refused(directory: Directory) -> None:
    plain = ldap3.Server("127.0.0.1", port=directory.plain_port, connect_timeout=5)
    conn = ldap3.Connection(plain, user=user_dn("studio-user"), password=directory.passwords["studio-user"])
    assert not conn.bind()
    assert conn.result["description"] == "confidentialityRequired"
    # Speaking plain LDAP to the LDAPS port does not get a directory answer at all.
    ldaps_as_plain = ldap3.Server("127.0.0.1", port=directory.ldaps_port, connect_timeout=3)
    with pytest.raises(ldap3.core.exceptions.LDAPException):
        ldap3.Connection(
            ldaps_as_plain, user=user_dn("studio-user"), password=directory.passwords["studio-user"],
            receive_timeout=3, auto_bind=True,
        )  # fmt: skip


def test_certificate_names_the_host_and_is_verified(directory: Directory) -> None:
    text = subprocess.run(
        ["openssl", "x509", "-in", str(directory.root / "etc/ldap/tls/server.pem"), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"DNS:{HOST}" in text
    # A client that checks names refuses the same server reached under another name.
    wrong_name = ldap3.Server(
        "127.0.0.1", port=directory.ldaps_port, use_ssl=True, connect_timeout=5,
        tls=ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=directory.ca_file, valid_names=["ldap.example.org"]),
    )  # fmt: skip
    with pytest.raises(ldap3.core.exceptions.LDAPException):
        ldap3.Connection(
            wrong_name,
            user=user_dn("studio-user"),
            password=directory.passwords["studio-user"],
            auto_bind=True,
        )


def test_query_group_filter_is_the_one_trino_sends(directory: Directory) -> None:
    """Trino binds as the user, then searches its group-auth-pattern: a hit means the user may query."""
    settings = managed_directory(host=HOST, base_dn=BASE_DN, query_group="analysts")
    assert settings.group_auth_pattern is not None and settings.user_base_dn == BASE_DN
    hits = {}
    for uid in ("studio-user", "data-engineer"):
        conn = directory.bind(settings.user_bind_pattern.replace("${USER}", uid), directory.passwords[uid])
        assert conn.bound, conn.result
        conn.search(settings.user_base_dn, settings.group_auth_pattern.replace("${USER}", uid))
        hits[uid] = [entry.entry_dn for entry in conn.entries]
    assert hits == {"studio-user": [f"cn=analysts,ou=groups,{BASE_DN}"], "data-engineer": []}


def test_users_cannot_read_password_hashes(directory: Directory) -> None:
    conn = directory.bind(user_dn("studio-user"), directory.passwords["studio-user"])
    conn.search(f"ou=people,{BASE_DN}", "(uid=*)", attributes=["uid", "userPassword"])
    assert sorted(str(e.uid) for e in conn.entries) == ["data-engineer", "studio-user"]
    assert all(not e.entry_attributes_as_dict.get("userPassword") for e in conn.entries)


def test_no_cleartext_password_lands_on_disk(directory: Directory) -> None:
    files = [p for p in directory.root.rglob("*") if p.is_file()]
    assert any(p.name == "data.mdb" for p in files)
    for path in files:
        data = path.read_bytes()
        for password in directory.passwords.values():
            assert password.encode() not in data, path
    ldif = (directory.root / "etc/ldap/slapd.d/cn=config/olcDatabase={1}mdb.ldif").read_text()
    (line,) = [
        x for x in ldif.replace("\n ", "").splitlines() if x.startswith("olcRootPW:")
    ]  # LDIF folds long lines
    value = line.split(":", 1)[1]
    # slapd writes the value base64-encoded (``olcRootPW::``) when it holds special characters.
    root_pw = base64.b64decode(value[1:].strip()).decode() if value.startswith(":") else value.strip()
    assert root_pw.startswith("{CRYPT}$6$rounds=100000$")  # SHA-512 crypt, never the password


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {
                "LDAP_GROUPS": "analysts",
                "LDAP_USERS": "studio-user:analysts",
                "LDAP_USER_SECRETS": "other=arn:x",
            },
            "user 'studio-user' has no entry in LDAP_USER_SECRETS",
        ),
        (
            {
                "LDAP_GROUPS": "analysts ops",
                "LDAP_USERS": "studio-user:analysts",
                "LDAP_USER_SECRETS": "studio-user=arn:studio-user",
            },
            "group 'ops' has no member; a groupOfNames needs one",
        ),
        (
            {
                "LDAP_GROUPS": "analysts",
                "LDAP_USERS": "studio-user:analysts",
                "LDAP_USER_SECRETS": "studio-user=arn:studio-user",
                "LDAP_BASE_DN": "o=corp",
            },
            "LDAP_BASE_DN 'o=corp' is not dc=...,dc=...",
        ),
    ],
    ids=["no-secret", "empty-group", "bad-base-dn"],
)
def test_bad_input_stops_the_script_with_the_reason(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    proc = run_bootstrap(
        tmp_path,
        {"arn:admin": secret("admin", "a" * 32), "arn:studio-user": secret("studio-user", "b" * 32)},
        **env,
    )
    assert proc.returncode == 1
    assert f"ldap-bootstrap: error: {message}" in proc.stderr
