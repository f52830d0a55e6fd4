#!/usr/bin/env bash
# Tools the tests need beyond Node: GnuPG (the PGP tests decrypt with the real gpg CLI).
# Installs gnupg with apt-get only when gpg is not on PATH; does nothing otherwise.
set -euo pipefail

if command -v gpg >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: gpg is missing and apt-get is not available; install GnuPG 2.2+ (package gnupg)" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "ensure-tools: gpg is missing and installing it needs root (apt-get install gnupg)" >&2
    exit 1
  fi
fi

echo "ensure-tools: installing gnupg" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnupg
gpg --version | head -1
