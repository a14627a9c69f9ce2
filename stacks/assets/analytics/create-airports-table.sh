#!/usr/bin/env bash
# EMR step: put the sample airports CSV under the table's prefix unless files are already
# there (the full file, uploaded by you), then create the Hive table in the Glue catalog.
# Usage: create-airports-table.sh s3://<datasets>/tables/airports/ s3://<sample.csv> s3://<airports.hql>
set -euo pipefail
location="${1:?table location, s3://bucket/prefix/}"
sample="${2:?sample CSV URI}"
ddl="${3:?DDL URI}"
[[ "$location" == s3://*/ ]] || { echo "location must be an s3:// prefix ending in /, got '$location'" >&2; exit 1; }
if [[ -z "$(aws s3 ls "$location" || true)" ]]; then
  echo "no files under $location: copying the sample"
  aws s3 cp --only-show-errors "$sample" "${location}airports-sample.csv"
else
  echo "keeping the files already under $location"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors "$ddl" "$work/airports.hql"
hive --hivevar location="$location" -f "$work/airports.hql"
hive -e "SELECT COUNT(*) FROM default.airports"
