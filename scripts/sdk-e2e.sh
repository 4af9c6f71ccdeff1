#!/usr/bin/env bash
# The official `openai` Python SDK (pinned) against a fresh devnet, unchanged:
# structured output, tool calls (collected and streamed) and embeddings
# (scripts/sdk-check.py). Needs the debug `agora` binary and the models
# (scripts/test.sh builds and fetches them first).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agora/target}"
SDK_VERSION=3.60.0
lib="$HOME/.cache/agora/pylib/openai-$SDK_VERSION"
if [[ ! -d "$lib/openai" ]]; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$lib" "openai==$SDK_VERSION"
fi
dir=$(mktemp -d)
log="$dir/devnet.log"
"$CARGO_TARGET_DIR/debug/agora" devnet --data-dir "$dir/net" --http 127.0.0.1:39190 \
  --rpc 127.0.0.1:39191 --provider-http 127.0.0.1:39192 --embedding-http 127.0.0.1:39193 \
  --p2p 127.0.0.1:39194 --data-http 127.0.0.1:39195 --threads 1 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 180); do
  grep -q "agora devnet ready" "$log" && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "sdk-e2e: the devnet exited before it was ready:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  sleep 1
done
grep -q "agora devnet ready" "$log" || { echo "sdk-e2e: devnet not ready after 180 s" >&2; exit 1; }
key=$(grep -v '^#' "$dir/net/api-keys" | head -1)
PYTHONPATH="$lib" OPENAI_BASE_URL=http://127.0.0.1:39190/v1 OPENAI_API_KEY="$key" \
  timeout 300 python3 scripts/sdk-check.py
