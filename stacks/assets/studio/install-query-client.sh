#!/usr/bin/env bash
# SageMaker Studio lifecycle configuration (JupyterLab): install the Trino/Presto Python client
# and fetch the CA that signed the EMR coordinator's certificate, so notebooks verify TLS.
# The StudioStack fills in the three values below at synthesis.
set -euo pipefail
CLIENT_PACKAGE="@CLIENT_PACKAGE@"
CA_URI="@CA_URI@"
REGION="@REGION@"
mkdir -p "$HOME/.mlhpc"
pip install --quiet --no-cache-dir "$CLIENT_PACKAGE"
if aws s3 cp --only-show-errors --region "$REGION" "$CA_URI" "$HOME/.mlhpc/emr-ca.pem"; then
  echo "EMR CA saved to $HOME/.mlhpc/emr-ca.pem (pass it as verify= to the client)"
else
  echo "could not read $CA_URI yet (is AnalyticsStack deployed?); rerun this script later" >&2
fi
