#!/usr/bin/env bash
# The first command: set up a fresh machine, build agora (release), fetch the
# default model if it is not cached, and run a local network. Extra arguments
# go to `agora devnet` (e.g. --http 127.0.0.1:9090 --data-dir /tmp/agora).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -p agora
exec "$CARGO_TARGET_DIR/release/agora" devnet "$@"
