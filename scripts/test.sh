#!/usr/bin/env bash
# The second command: set up a fresh machine, fetch and verify the default
# and embedding models (real-model tests need them), check formatting, lints,
# docs and the console's bundle, and run every test in the workspace (the
# console's browser tests among them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# House gates: each fails the run on its own, before the long test phase.
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet
# The console: its pinned npm packages, the committed bundle equal to a
# rebuild from its sources, and its unit tests (wire-format vectors).
scripts/build-console.sh --check
(cd console && npm test)
cargo build -p agora
"$CARGO_TARGET_DIR/debug/agora" model fetch
"$CARGO_TARGET_DIR/debug/agora" model fetch --embedding
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@" || status=$?
else
  cargo test --workspace --no-fail-fast "$@" || status=$?
fi
# The official openai SDK against a devnet, unchanged.
scripts/sdk-e2e.sh || status=$?
exit "$status"
