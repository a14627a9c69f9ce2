#!/usr/bin/env bash
# Configure OpenLDAP (slapd) from scratch: schema, TLS, users and groups; LDAPS only.
#
# The LDAP host runs this at first boot (its user data downloads it from the CDK asset
# bucket); the tests in tests/stacks/test_ldap_bootstrap.py run this very file against a
# real slapd on loopback. Everything is configured offline with slapadd, so a half-started
# server never serves a half-made directory.
#
# Passwords never appear in this file, in arguments (ps) or in the environment: each one is
# read from Secrets Manager (`aws secretsmanager get-secret-value`), written to a 0600 file in
# a private temporary directory, hashed by slappasswd -T and the file removed.
#
# Environment (none of it secret):
#   LDAP_BASE_DN        e.g. dc=mlhpc,dc=internal
#   LDAP_HOSTNAME       DNS name clients use; the server certificate is issued for it
#   LDAP_GROUPS         space-separated group names, e.g. "analysts engineers"
#   LDAP_USERS          space-separated uid:group,group entries, e.g. "studio-user:analysts"
#   LDAP_USER_SECRETS   space-separated uid=secret-id entries (JSON secrets with a "password" key)
#   LDAP_ADMIN_SECRET   secret id of the directory manager's password (cn=admin,<base dn>)
#   LDAP_ROOT           prefix of every path (default /); tests use a temporary directory
#   LDAP_INSTALL        1: apt-get install slapd and tools first (default 0)
#   LDAP_SERVICE        systemd: listen on ldaps:/// and ldapi:/// and restart; none: configure only
#   LDAP_OWNER          owner of the server files (default openldap, or the caller when it does not exist)
#   LDAP_CA_UPLOAD_URI  s3:// URI to publish the CA certificate (public) to, for EMR and Studio
#   LDAP_MODULE_PATH    where back_mdb lives (default /usr/lib/ldap, Debian and Ubuntu)
#   LDAP_SCHEMA_DIR     where core/cosine/inetorgperson.ldif live (default /etc/ldap/schema)
set -euo pipefail
umask 077

log() { printf 'ldap-bootstrap: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

: "${LDAP_BASE_DN:?set LDAP_BASE_DN, e.g. dc=mlhpc,dc=internal}"
: "${LDAP_HOSTNAME:?set LDAP_HOSTNAME, the name in the server certificate}"
: "${LDAP_GROUPS:?set LDAP_GROUPS, e.g. analysts}"
: "${LDAP_USERS:?set LDAP_USERS, e.g. studio-user:analysts}"
: "${LDAP_USER_SECRETS:?set LDAP_USER_SECRETS, e.g. studio-user=arn:aws:secretsmanager:...}"
: "${LDAP_ADMIN_SECRET:?set LDAP_ADMIN_SECRET to the admin password secret id}"
ROOT="${LDAP_ROOT:-/}"
ROOT="${ROOT%/}"
CONF="$ROOT/etc/ldap/slapd.d"
DATA="$ROOT/var/lib/ldap"
TLS="$ROOT/etc/ldap/tls"
RUN="$ROOT/run/slapd"
MODULES="${LDAP_MODULE_PATH:-/usr/lib/ldap}"
SCHEMA="${LDAP_SCHEMA_DIR:-/etc/ldap/schema}"

[[ "$LDAP_BASE_DN" =~ ^dc=[a-z0-9-]+(,dc=[a-z0-9-]+)*$ ]] || die "LDAP_BASE_DN '$LDAP_BASE_DN' is not dc=...,dc=..."
[[ "$LDAP_HOSTNAME" =~ ^[A-Za-z0-9.-]+$ ]] || die "LDAP_HOSTNAME '$LDAP_HOSTNAME' is not a DNS name"

if [[ "${LDAP_INSTALL:-0}" == 1 ]]; then
  log "installing slapd, ldap-utils and openssl"
  export DEBIAN_FRONTEND=noninteractive
  # No package-made database: this script writes the whole configuration itself.
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q slapd ldap-utils openssl python3
fi
command -v slapadd >/dev/null || die "slapadd not found: install slapd (apt-get install -y slapd ldap-utils)"

if [[ -n "${LDAP_OWNER:-}" ]]; then
  OWNER="$LDAP_OWNER"
elif id openldap >/dev/null 2>&1; then
  OWNER=openldap
else
  OWNER="$(id -un)"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Print a secret's "password" field into a 0600 file; the value never touches argv or env.
fetch_password() {
  local secret_id="$1" out="$2"
  aws secretsmanager get-secret-value --secret-id "$secret_id" --query SecretString --output text \
    | python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)["password"])' >"$out"
  [[ -s "$out" ]] || die "secret $secret_id has an empty password"
}

# SHA-512 crypt ({CRYPT}$6$...), hashed from a file so the password is never an argument.
# shellcheck disable=SC2016  # the salt format is for slappasswd, not the shell
hash_password() {
  slappasswd -h '{CRYPT}' -c '$6$rounds=100000$%.16s' -T "$1"
}

# --- TLS: a server certificate for LDAP_HOSTNAME, issued by a CA made here ------------------
mkdir -p "$TLS"
if [[ ! -s "$TLS/server.pem" ]]; then
  log "creating a CA and a server certificate for $LDAP_HOSTNAME (SELF-SIGNED - replace for production)"
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 825 \
    -subj "/O=mlhpc/OU=SELF-SIGNED - replace for production/CN=mlhpc LDAP CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$WORK/ca.key" -out "$TLS/ca.pem" 2>/dev/null
  openssl req -new -newkey rsa:3072 -sha256 -nodes -subj "/O=mlhpc/CN=$LDAP_HOSTNAME" \
    -keyout "$TLS/server.key" -out "$WORK/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$LDAP_HOSTNAME" >"$WORK/server.ext"
  openssl x509 -req -sha256 -days 825 -in "$WORK/server.csr" -CA "$TLS/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -CAserial "$WORK/ca.srl" -extfile "$WORK/server.ext" -out "$TLS/server.pem" 2>/dev/null
  # The CA signs exactly one certificate: its key goes with the temporary directory.
  rm -f "$WORK/ca.key"
fi

# --- cn=config ------------------------------------------------------------------------------
peer="gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth"
fetch_password "$LDAP_ADMIN_SECRET" "$WORK/admin"
admin_hash="$(hash_password "$WORK/admin")"
rm -f "$WORK/admin"
mkdir -p "$RUN"
cat >"$WORK/config.ldif" <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcArgsFile: $RUN/slapd.args
olcPidFile: $RUN/slapd.pid
olcLogLevel: stats
olcTLSCACertificateFile: $TLS/ca.pem
olcTLSCertificateFile: $TLS/server.pem
olcTLSCertificateKeyFile: $TLS/server.key
olcTLSProtocolMin: 3.3
olcDisallows: bind_anon
olcRequires: authc
olcSecurity: simple_bind=128
olcPasswordCryptSaltFormat: \$6\$rounds=100000\$%.16s

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $MODULES
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$SCHEMA/core.ldif

include: file://$SCHEMA/cosine.ldif

include: file://$SCHEMA/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcPasswordHash: {CRYPT}
olcRequires: authc

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact="$peer" manage by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $DATA
olcDbMaxSize: 1073741824
olcSuffix: $LDAP_BASE_DN
olcRootDN: cn=admin,$LDAP_BASE_DN
olcRootPW: $admin_hash
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcAccess: {0}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {1}to * by dn.exact="$peer" manage by users read by * none
LDIF

# --- the directory: base, people, groups ---------------------------------------------------
first_dc="${LDAP_BASE_DN%%,*}"
first_dc="${first_dc#dc=}"
{
  printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n\n' \
    "$LDAP_BASE_DN" "$first_dc" "$first_dc"
  printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$LDAP_BASE_DN"
  printf 'dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n\n' "$LDAP_BASE_DN"
} >"$WORK/data.ldif"

declare -A secret_of=()
for pair in $LDAP_USER_SECRETS; do
  secret_of["${pair%%=*}"]="${pair#*=}"
done
declare -A members=()
for entry in $LDAP_USERS; do
  uid="${entry%%:*}"
  groups="${entry#*:}"
  [[ "$uid" =~ ^[a-z][a-z0-9_-]{1,31}$ ]] || die "user name '$uid' is not a valid uid"
  [[ -n "${secret_of[$uid]:-}" ]] || die "user '$uid' has no entry in LDAP_USER_SECRETS"
  fetch_password "${secret_of[$uid]}" "$WORK/user"
  user_hash="$(hash_password "$WORK/user")"
  rm -f "$WORK/user"
  dn="uid=$uid,ou=people,$LDAP_BASE_DN"
  printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n' \
    "$dn" "$uid" "$uid" "$uid" "$user_hash" >>"$WORK/data.ldif"
  if [[ "$groups" != "$entry" ]]; then
    for group in ${groups//,/ }; do
      members["$group"]+="member: $dn"$'\n'
    done
  fi
done
for group in $LDAP_GROUPS; do
  [[ -n "${members[$group]:-}" ]] || die "group '$group' has no member; a groupOfNames needs one"
  printf 'dn: cn=%s,ou=groups,%s\nobjectClass: groupOfNames\ncn: %s\n%s\n' \
    "$group" "$LDAP_BASE_DN" "$group" "${members[$group]}" >>"$WORK/data.ldif"
done

# --- write the configuration and the database offline --------------------------------------
if [[ "${LDAP_SERVICE:-none}" == systemd ]]; then
  systemctl stop slapd || true
fi
rm -rf "$CONF" "$DATA"
mkdir -p "$CONF" "$DATA"
slapadd -n 0 -F "$CONF" -l "$WORK/config.ldif" >/dev/null
slapadd -n 1 -F "$CONF" -l "$WORK/data.ldif" >/dev/null 2>&1 || {
  slapadd -n 1 -F "$CONF" -l "$WORK/data.ldif" -u >&2 || true
  die "slapadd rejected the directory entries (see above)"
}
chown -R "$OWNER" "$CONF" "$DATA" "$TLS" "$RUN"
chmod 0644 "$TLS/ca.pem" "$TLS/server.pem"
chmod 0600 "$TLS/server.key"
log "configured $LDAP_BASE_DN for $LDAP_HOSTNAME in $CONF"

if [[ "${LDAP_SERVICE:-none}" == systemd ]]; then
  # LDAPS only, plus the local socket for root's maintenance; no plain LDAP listener at all.
  sed -i 's|^SLAPD_SERVICES=.*|SLAPD_SERVICES="ldaps:/// ldapi:///"|' /etc/default/slapd
  systemctl enable slapd
  systemctl restart slapd
  log "slapd listening on ldaps:///"
fi
if [[ -n "${LDAP_CA_UPLOAD_URI:-}" ]]; then
  aws s3 cp --only-show-errors "$TLS/ca.pem" "$LDAP_CA_UPLOAD_URI"
  log "published the CA certificate to $LDAP_CA_UPLOAD_URI"
fi
