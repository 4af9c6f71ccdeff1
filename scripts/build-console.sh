#!/usr/bin/env bash
# Build the web console into console/dist (committed; the gateway embeds it).
#   scripts/build-console.sh           npm ci if needed, type-check, test, build
#   scripts/build-console.sh --check   rebuild into a temp dir and fail if it
#                                      differs from the committed console/dist
set -euo pipefail
cd "$(dirname "$0")/../console"

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -f node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  node build.mjs --out "$tmp"
  for f in index.html app.js app.css; do
    if ! cmp -s "$tmp/$f" "dist/$f"; then
      echo "console/dist/$f is stale: run scripts/build-console.sh and commit console/dist" >&2
      exit 1
    fi
  done
  extra=$(ls dist | grep -vxE 'index.html|app.js|app.css' || true)
  if [ -n "$extra" ]; then
    echo "console/dist holds unexpected files: $extra" >&2
    exit 1
  fi
  echo "console/dist is up to date"
  exit 0
fi

node build.mjs --tests
node --test tests/build/
echo "built console/dist ($(wc -c < dist/app.js) B js, $(wc -c < dist/app.css) B css)"
