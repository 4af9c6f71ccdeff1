#!/usr/bin/env bash
# The second command: set up a fresh machine, fetch and verify the default
# model (real-model tests need it), and run every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build -p agora
"$CARGO_TARGET_DIR/debug/agora" model fetch
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
