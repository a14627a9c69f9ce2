#!/usr/bin/env bash
# EMR bootstrap action: trust the LDAP directory's CA on every node, so HiveServer2 and
# Trino/Presto can verify the ldaps:// server. Usage: emr-trust-ca.sh s3://bucket/ldap/ca.pem
set -euo pipefail
ca_uri="${1:?s3:// URI of the directory CA (PEM)}"
anchor=/etc/pki/ca-trust/source/anchors/mlhpc-ldap-ca.pem
# The managed LDAP host publishes its CA a few minutes after boot; the stack orders the
# cluster after the host's completion signal, so a short retry covers S3 visibility only.
for attempt in 1 2 3 4 5 6; do
  if sudo aws s3 cp --only-show-errors "$ca_uri" "$anchor"; then break; fi
  [[ $attempt == 6 ]] && { echo "cannot read $ca_uri" >&2; exit 1; }
  sleep 10
done
sudo chmod 0644 "$anchor"
sudo update-ca-trust extract
# JDKs with their own cacerts file (not the system store) get the CA imported as well.
# 'changeit' is the JDK's published default store password, not a secret of this project.
storepass="${JDK_CACERTS_STOREPASS:-changeit}"
for cacerts in /usr/lib/jvm/*/lib/security/cacerts /usr/lib/jvm/*/jre/lib/security/cacerts; do
  [[ -f "$cacerts" && ! -L "$cacerts" ]] || continue
  sudo keytool -importcert -noprompt -trustcacerts -alias mlhpc-ldap-ca -file "$anchor" \
    -keystore "$cacerts" -storepass "$storepass" >/dev/null 2>&1 || true
done
