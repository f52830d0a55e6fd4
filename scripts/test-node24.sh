#!/usr/bin/env bash
# The Lambda functions run on Node.js 24 (lib/function.ts). After the main suite, `npm test` runs
# the tests closest to the Lambda runtime under Node 24: the bundling test (the shipped bundles and
# their worker), the handler tests and the integration tests. When the machine's Node is older,
# Node 24 is the npm package node-<platform>-<arch>@24 (the official binary), fetched once with
# `npm pack` into .cache/node24/ (gitignored) and reused.
#
#   bash scripts/test-node24.sh [vitest files...]     (default: the subset below)
set -euo pipefail
cd "$(dirname "$0")/.."

# The Lambda code paths under the Lambda runtime's Node: bundles, handlers, staging, export, state,
# PGP and the failure points. The long end-to-end drivers (simulation, demo, operator drills, the CLI
# walkthrough, DuckDB) run in the main suite only: twice would double CI's time.
SUBSET=(
  test/cdk/bundling.test.ts
  test/unit/exporter-handler.test.ts
  test/integration/handlers-logs.test.ts
  test/integration/exporter-group-handler.test.ts
  test/integration/export-end-to-end.test.ts
  test/integration/failure-points.test.ts
  test/integration/parts-continuation.test.ts
  test/integration/s3-staging-store.test.ts
  test/unit/continued-range-reads.test.ts
  test/integration/s3-export-sink.test.ts
  test/integration/dynamo-ledger-and-connections.test.ts
  test/integration/dynamo-export-state-store.test.ts
  test/integration/pgp.gpg.test.ts
  test/integration/alarms-fire.test.ts
  test/integration/security-headers.test.ts
)
if [ "$#" -gt 0 ]; then SUBSET=("$@"); fi

major() { "$1" -p 'process.versions.node.split(".")[0]'; }

node24=""
if [ "$(major node)" -ge 24 ]; then
  node24="$(command -v node)"
else
  cache=.cache/node24
  package="node-$(node -p 'process.platform')-$(node -p 'process.arch')"
  if [ ! -x "$cache/package/bin/node" ] || [ "$(major "$cache/package/bin/node")" != 24 ]; then
    echo "test-node24: fetching Node.js 24 as the npm package $package@24 into $cache" >&2
    rm -rf "$cache" && mkdir -p "$cache"
    tarball="$(cd "$cache" && npm pack --silent "$package@24")"
    tar -xzf "$cache/$tarball" -C "$cache"
    rm -f "$cache/$tarball"
  fi
  node24="$PWD/$cache/package/bin/node"
fi

echo "test-node24: $("$node24" --version): ${SUBSET[*]}" >&2
# The Node 24 binary first on PATH: child processes the tests spawn (the CLI, workers) run on it too.
PATH="$(dirname "$node24"):$PATH" "$node24" node_modules/vitest/vitest.mjs run "${SUBSET[@]}"
