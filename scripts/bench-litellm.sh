#!/usr/bin/env bash
# The gateway overhead benchmark side by side with LiteLLM's proxy, on this
# machine, measured by one load generator (`agora bench gateway --overhead`):
#
#   1. agora: the paying gateway (API keys on) in front of a provider whose
#      engine answers at once, against that provider called directly;
#   2. LiteLLM: its proxy (installed from PyPI into .bench/litellm-venv,
#      pinned below) in front of agora's instant OpenAI-compatible stub
#      (`agora bench gateway --overhead --serve-stub`), against that stub
#      called directly.
#
# LiteLLM's virtual keys live in a database that LiteLLM reaches through the
# Prisma client, whose query engine is a binary Prisma downloads from its own
# servers at first use; where that download is impossible the proxy is
# measured with its master key (still an authenticated key, checked per
# request) and a global budget (`litellm_settings.max_budget`), and the
# script says so. Set DATABASE_URL (a PostgreSQL database LiteLLM can use
# with a working Prisma engine) to measure a virtual key with a budget
# instead.
#
# Environment: AGORA (the agora binary; default: the release build),
# CLIENTS (default 1,16,256), SECONDS_PER_LEVEL (default 10),
# LITELLM_WORKERS (uvicorn workers; default 1), SKIP_AGORA=1 (LiteLLM only).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench="$root/.bench"
litellm_version="1.100.5"
agora="${AGORA:-${CARGO_TARGET_DIR:-$HOME/.cache/agora/target}/release/agora}"
clients="${CLIENTS:-1,16,256}"
seconds="${SECONDS_PER_LEVEL:-10}"
workers="${LITELLM_WORKERS:-1}"
stub_addr="127.0.0.1:18090"
litellm_port=18091
master_key="sk-bench-master-key"

[[ -x "$agora" ]] || {
  echo "bench-litellm: $agora not found; build it with cargo build --release -p agora" >&2
  exit 1
}
mkdir -p "$bench"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

venv="$bench/litellm-venv"
if ! "$venv/bin/python" -c "import litellm" 2>/dev/null \
  || [[ "$("$venv/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p')" != "$litellm_version" ]]; then
  echo "bench-litellm: installing litellm[proxy]==$litellm_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "litellm[proxy]==$litellm_version"
fi

wait_for() { # URL [HEADER]
  for _ in $(seq 1 360); do
    if curl -fsS -o /dev/null ${2:+-H "$2"} "$1" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "bench-litellm: $1 never answered" >&2
  return 1
}

if [[ "${SKIP_AGORA:-0}" != 1 ]]; then
  echo "## agora gateway (in-process network, paying gateway, API key)"
  "$agora" bench gateway --overhead --clients "$clients" --seconds "$seconds"
fi

"$agora" bench gateway --overhead --serve-stub "$stub_addr" >"$bench/stub.log" 2>&1 &
pids+=($!)
wait_for "http://$stub_addr/v1/models"

config="$bench/litellm.yaml"
cat >"$config" <<EOF
model_list:
  - model_name: instant
    litellm_params:
      model: openai/instant
      api_base: http://$stub_addr/v1
      api_key: unused
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
litellm_settings:
  telemetry: false
  max_budget: 1000000
  budget_duration: 30d
general_settings:
  master_key: $master_key
EOF
if [[ -n "${DATABASE_URL:-}" ]]; then
  printf '  database_url: "%s"\n' "$DATABASE_URL" >>"$config"
fi

export LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR
"$venv/bin/litellm" --config "$config" --host 127.0.0.1 --port "$litellm_port" \
  --num_workers "$workers" >"$bench/litellm.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$litellm_port/health/liveliness"

key="$master_key"
if [[ -n "${DATABASE_URL:-}" ]]; then
  key="$(curl -fsS "http://127.0.0.1:$litellm_port/key/generate" \
    -H "Authorization: Bearer $master_key" -H 'content-type: application/json' \
    -d '{"models": ["instant"], "max_budget": 1000000}' |
    "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
  echo "## LiteLLM $litellm_version proxy (virtual key with max_budget, $workers worker(s))"
else
  echo "## LiteLLM $litellm_version proxy (MASTER key: no database for virtual keys; global max_budget; $workers worker(s))"
fi
"$agora" bench gateway --overhead --external-url "http://127.0.0.1:$litellm_port/v1" \
  --external-key "$key" --direct-url "http://$stub_addr/v1" --model instant \
  --clients "$clients" --seconds "$seconds"
