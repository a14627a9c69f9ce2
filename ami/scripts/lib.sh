#!/bin/bash
# Shared helpers for the mlhpc image scripts: logging, option parsing, verified downloads,
# signed repositories and the record of what was installed. Sourced, never run.
# Nothing here names a version: every version arrives as an option, from ami/versions.yaml.

MLHPC_AMI_STATE=${MLHPC_AMI_STATE:-/opt/mlhpc/ami/installed-versions}
MLHPC_WORK=${MLHPC_WORK:-/var/tmp/mlhpc-ami}

log() { printf 'mlhpc-ami: %s\n' "$*"; }
warn() { printf 'mlhpc-ami: WARNING: %s\n' "$*" >&2; }
die() {
  printf 'mlhpc-ami: ERROR: %s\n' "$*" >&2
  exit 1
}

# parse_args --name value ... : sets ARG_NAME (upper case, '-' -> '_') for each option.
parse_args() {
  local key value
  while (($#)); do
    case $1 in
      --*=*) key=${1%%=*} value=${1#*=} ;;
      --*)
        (($# >= 2)) || die "option $1 needs a value"
        key=$1 value=$2
        shift
        ;;
      *) die "unexpected argument '$1'; options look like --version VALUE" ;;
    esac
    key=${key#--}
    key=${key//-/_}
    printf -v "ARG_${key^^}" '%s' "$value"
    shift
  done
}

# require NAME...: fail unless every ARG_NAME was given and is not empty.
require() {
  local name var
  for name in "$@"; do
    var="ARG_${name^^}"
    [[ -n ${!var:-} ]] || die "missing --${name//_/-}: the component passes it from ami/versions.yaml"
  done
}

# is_unverified SHA: true when the manifest has no checksum for a download ("none" is what
# ImageStack passes for a null sha256: Image Builder parameters cannot be empty).
is_unverified() { [[ -z $1 || $1 == none || $1 == null ]]; }

# fetch_verified URL SHA256 DEST: download over HTTPS and refuse anything whose SHA-256 differs
# from the manifest. A download without a checksum is refused unless MLHPC_ALLOW_UNVERIFIED=true.
fetch_verified() {
  local url=$1 sha=$2 dest=$3 actual
  if is_unverified "$sha"; then
    if [[ ${MLHPC_ALLOW_UNVERIFIED:-false} != true ]]; then
      die "refusing to install $url: ami/versions.yaml has no sha256 for it. Put the publisher's SHA-256 (or one you computed from a reviewed copy) in versions.yaml, or accept the risk with image.allow_unverified_downloads: true (MLHPC_ALLOW_UNVERIFIED=true)"
    fi
    warn "installing $url WITHOUT checksum verification (MLHPC_ALLOW_UNVERIFIED=true)"
  elif [[ ! $sha =~ ^[0-9a-f]{64}$ ]]; then
    die "'$sha' is not a SHA-256 (64 lowercase hex digits); fix the entry for $url in ami/versions.yaml"
  fi
  mkdir -p "$(dirname "$dest")"
  if ! curl --fail --silent --show-error --location --retry 3 --proto '=https' --output "$dest" "$url"; then
    rm -f "$dest"
    die "download failed: $url (check the URL in ami/versions.yaml and the build subnet's route to the internet)"
  fi
  if ! is_unverified "$sha"; then
    actual=$(sha256sum "$dest" | cut -d' ' -f1)
    if [[ $actual != "$sha" ]]; then
      rm -f "$dest"
      die "checksum mismatch for $url: versions.yaml says $sha, the download is $actual. The file changed upstream or was tampered with; it was deleted and nothing was installed"
    fi
    log "verified $url (sha256 $actual)"
  fi
}

# add_repo NAME BASEURL KEY_URL KEY_SHA256: a dnf repository whose packages must carry a
# signature from the given key; the key itself is a verified download.
add_repo() {
  local name=$1 baseurl=$2 key_url=$3 key_sha=$4 key_file
  key_file=/etc/pki/rpm-gpg/mlhpc-$name.pub
  fetch_verified "$key_url" "$key_sha" "$key_file"
  rpm --import "$key_file"
  cat >"/etc/yum.repos.d/mlhpc-$name.repo" <<REPO
[mlhpc-$name]
name=mlhpc $name (added by the mlhpc image build)
baseurl=$baseurl
enabled=1
gpgcheck=1
gpgkey=file://$key_file
REPO
}

# version_ge A B: true when version A >= version B (sort -V order).
version_ge() { [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]; }

# record NAME VERSION: what this image contains, read by the validate and test phases.
record() {
  mkdir -p "$(dirname "$MLHPC_AMI_STATE")"
  touch "$MLHPC_AMI_STATE"
  grep -v "^$1=" "$MLHPC_AMI_STATE" >"$MLHPC_AMI_STATE.new" || true
  printf '%s=%s\n' "$1" "$2" >>"$MLHPC_AMI_STATE.new"
  mv "$MLHPC_AMI_STATE.new" "$MLHPC_AMI_STATE"
}

# recorded NAME: the version recorded for NAME, or nothing.
recorded() { sed -n "s/^$1=//p" "$MLHPC_AMI_STATE" 2>/dev/null | tail -n1; }

# gencode "80 86 ...": nvcc -gencode flags for the manifest's cuda_architectures.
gencode() {
  local arch flags=""
  for arch in $1; do
    flags+=" -gencode=arch=compute_$arch,code=sm_$arch"
  done
  printf '%s' "${flags# }"
}

# unpack ARCHIVE DIR: extract a tarball into a fresh directory.
unpack() {
  rm -rf "$2"
  mkdir -p "$2"
  tar -xf "$1" -C "$2" --strip-components=1
}

# ldconf NAME DIR...: make libraries in DIR visible to the dynamic linker.
ldconf() {
  local name=$1
  shift
  printf '%s\n' "$@" >"/etc/ld.so.conf.d/mlhpc-$name.conf"
  ldconfig
}
