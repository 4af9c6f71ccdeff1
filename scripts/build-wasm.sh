#!/usr/bin/env bash
# Build the example compute-to-data algorithms (C, WASI preview 1) with
# Debian's clang, wasi-libc and lld, into crates/agora-sandbox/algorithms/wasm/,
# and the sandbox tests' hostile probe module beside its source.
# The built modules are committed: their BLAKE3 ids are pinned by the tests,
# so rebuilding with the same toolchain must give the same bytes (--check
# rebuilds into a temporary folder and fails on any difference).
set -euo pipefail
cd "$(dirname "$0")/.."
src=crates/agora-sandbox/algorithms
out="$src/wasm"
if [[ "${1:-}" == "--check" ]]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi
probe=crates/agora-sandbox/tests/probe
mkdir -p "$out"
build() { # SOURCE.c OUTPUT.wasm
  clang --target=wasm32-wasi -O2 -fuse-ld=lld -Wl,--strip-all \
    -Wall -Wextra -Werror -o "$2" "$1" -lm
}
for c in "$src"/*.c; do
  build "$c" "$out/$(basename "$c" .c).wasm"
done
if [[ "${1:-}" == "--check" ]]; then
  build "$probe/probe.c" "$out/probe.wasm.check"
  cmp "$out/probe.wasm.check" "$probe/probe.wasm" || { echo "build-wasm: probe.wasm differs from the committed module" >&2; exit 1; }
  for f in "$out"/*.wasm; do
    cmp "$f" "$src/wasm/$(basename "$f")" || { echo "build-wasm: $(basename "$f") differs from the committed module" >&2; exit 1; }
  done
  echo "build-wasm: committed modules match a fresh build"
else
  build "$probe/probe.c" "$probe/probe.wasm"
  ls -l "$out" "$probe/probe.wasm"
fi
