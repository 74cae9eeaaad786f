#!/usr/bin/env bash
# bench/ceilings.sh — the fastest gRPC server this build allows, and the
# gateway beside it, in one sitting. Three runs take turns, round after
# round, each the same flashsale load (200,000 IssueCoupon calls, 512 in
# flight):
#   bare-callback  bench/bare_server on the callback API, the gateway's;
#   bare-async     bench/bare_server on the completion-queue API;
#   gateway        the Kafka gateway and one worker, the hot workload (one
#                  coupon of 10,000, 100,000 users asking twice: most calls
#                  are answered sold out by the gateway).
# The table gives each run's median calls per second and the server
# process's CPU seconds per 1,000 calls, and the gateway's ratios to the
# faster bare server: issue 12 asks for at least 0.9x its rate at no more
# than 1.15x its CPU per call.
#
# Usage: bench/ceilings.sh [--rounds=N] [--requests=N]
# Needs the local stack (scripts/stack start) and this tree's build
# (scripts/build). Stops and starts the services of this stack, and leaves
# them stopped. Raw reports and the table (ceilings.md) go to
# bench/results/ceilings/, or to CEILINGS_OUT when set: bench/compare.sh
# runs it inside its sitting and docs/benchmarks.md shows that table.
# Check `uptime` before and after: figures taken beside a build are not figures.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../scripts/lib.sh"

ROUNDS=3
REQUESTS=200000
for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --requests=*) REQUESTS="${arg#*=}" ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number, got '$ROUNDS'"
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive number, got '$REQUESTS'"
BUILD="${BUILD_DIR:-$REPO_ROOT/build}"
FLASHSALE="$BUILD/bench/flashsale" BARE="$BUILD/bench/bare-grpc-server"
for bin in "$FLASHSALE" "$BARE"; do
  [[ -x "$bin" ]] || die "$bin is missing: run scripts/build first"
done
need_cmd jq
BARE_PORT="${BARE_PORT:-50061}"
ensure_port_free "$BARE_PORT" BARE_PORT bare-grpc-server

OUT="${CEILINGS_OUT:-$REPO_ROOT/bench/results/ceilings}"
mkdir -p "$OUT"
rm -f -- "$OUT"/*.json "$OUT"/*.txt
uptime_before="$(uptime)"
log "uptime before: $uptime_before"
"$REPO_ROOT/scripts/services" stop >/dev/null 2>&1 || true

bare_run() {  # API ROUND
  "$BARE" --listen "127.0.0.1:$BARE_PORT" --api "$1" >"$OUT/bare-$1-$2.log" 2>&1 &
  local pid=$!
  wait_for_port 127.0.0.1 "$BARE_PORT" 10 bare-grpc-server "$OUT/bare-$1-$2.log" "$pid"
  "$FLASHSALE" --target "127.0.0.1:$BARE_PORT" --verify=false --progress=false \
    --requests "$REQUESTS" --pids "server=$pid" --json_out "$OUT/bare-$1-$2.json" \
    >"$OUT/bare-$1-$2.txt" 2>&1 || die "flashsale against bare-$1 failed (see $OUT/bare-$1-$2.txt)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

gateway_run() {  # ROUND
  WORKERS=1 "$REPO_ROOT/scripts/services" start >/dev/null
  "$FLASHSALE" --target "127.0.0.1:$GATEWAY_PORT" --progress=false --workload hot \
    --requests "$REQUESTS" --pid_files "server=$RUN_DIR/gateway.pid,worker=$RUN_DIR/worker-1.pid" \
    --json_out "$OUT/gateway-$1.json" >"$OUT/gateway-$1.txt" 2>&1 ||
    die "flashsale against the gateway failed (see $OUT/gateway-$1.txt)"
  [[ "$(jq -r .invariants_ok "$OUT/gateway-$1.json")" == true ]] ||
    die "gateway round $1 broke an invariant (see $OUT/gateway-$1.txt)"
  "$REPO_ROOT/scripts/services" stop >/dev/null
}

summary() {  # JSON: "calls/s server-CPU-per-1000"
  jq -r '"\(.requests / .send_seconds | round) \(.cpu[] | select(.name == "server") | .seconds_per_1000_requests)"' "$1"
}

for ((round = 1; round <= ROUNDS; round++)); do
  for api in callback async; do
    bare_run "$api" "$round"
    log "bare-$api round $round: $(summary "$OUT/bare-$api-$round.json") (calls/s, CPU s per 1,000)"
  done
  gateway_run "$round"
  log "gateway round $round: $(summary "$OUT/gateway-$round.json") (calls/s, CPU s per 1,000)"
done
uptime_after="$(uptime)"
log "uptime after: $uptime_after"

median() {  # NAME FIELD(rate|cpu)
  jq -s -r --arg f "$2" '
    [ .[] | if $f == "rate" then .requests / .send_seconds
            else (.cpu[] | select(.name == "server") | .seconds_per_1000_requests) end ]
    | sort | .[(length / 2 | floor)]' "$OUT/$1"-*.json
}
declare -A rate cpu
for name in bare-callback bare-async gateway; do
  rate[$name]="$(median "$name" rate)"
  cpu[$name]="$(median "$name" cpu)"
done
best=bare-callback
if awk -v a="${rate[bare-async]}" -v c="${rate[bare-callback]}" 'BEGIN { exit !(a > c) }'; then
  best=bare-async
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  printf '# The ceiling: the callback and the completion-queue API, and the gateway\n\n'
  printf 'Measured by `bench/ceilings.sh --rounds=%s --requests=%s` at %s (commit %s):\n' \
    "$ROUNDS" "$REQUESTS" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(git -C "$REPO_ROOT" rev-parse --short HEAD)"
  printf '%s IssueCoupon calls per run, 512 in flight, the median of the rounds.\n\n' "$REQUESTS"
  printf '```\nuptime before: %s\nuptime after:  %s\n```\n\n' "$uptime_before" "$uptime_after"
  printf '| server | calls/s | server CPU s per 1,000 calls |\n|---|---|---|\n'
  for name in bare-callback bare-async gateway; do
    printf '| %s | %.0f | %s |\n' "$name" "${rate[$name]}" "${cpu[$name]}"
  done
  printf '\nThe faster bare server is **%s**: the ceiling. ' "$best"
  printf 'The completion-queue API serves %sx the callback API'"'"'s rate at %sx its CPU per call.\n' \
    "$(ratio "${rate[bare-async]}" "${rate[bare-callback]}")" "$(ratio "${cpu[bare-async]}" "${cpu[bare-callback]}")"
  printf 'The gateway reaches **%sx** the ceiling'"'"'s rate (goal: at least 0.9x) at **%sx** its CPU per call (goal: at most 1.15x).\n' \
    "$(ratio "${rate[gateway]}" "${rate[$best]}")" "$(ratio "${cpu[gateway]}" "${cpu[$best]}")"
} >"$OUT/ceilings.md"
echo
cat "$OUT/ceilings.md"
log "wrote $OUT/ceilings.md"
