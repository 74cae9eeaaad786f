#!/usr/bin/env bash
# bench/storm.sh — what a sold-out storm costs, for one or more builds of the
# services in one sitting: CPU seconds per 1,000 IssueCoupon calls of the
# gateway, the worker, Kafka, PostgreSQL, the load generator and the whole
# machine, during flashsale's `soldout` workload (10,000 buyers take the stock
# first, unmeasured; then 100,000 other users call). The builds take turns,
# round after round, so a drift of the machine hits them alike.
# --workload=hot puts two builds' hot sale side by side the same way (is a
# refactoring free?); --rate=N runs open loop at N calls/s instead of 512 in
# flight (ordinary load: what a call costs when nothing batches itself);
# --issuer=redis runs the design's existing system instead (the gateway
# decides in Redis; the outbox scheduler in place of the worker).
#
# Usage: bench/storm.sh [--rounds=N] [--requests=N] [--workload=W] [--rate=N] [--issuer=redis] NAME=BUILD_DIR [NAME=BUILD_DIR ...]
#   BUILD_DIR: a build tree (or a copy of its binaries) holding
#              gateway/coupon-gateway and issuer-worker/coupon-issuer-worker.
#   --rounds   turns per build (default 3); the table gives each build's median.
#   --requests measured calls per run (default the workload's 100,000).
#   --workload a flashsale workload (default soldout); results of another
#              workload go to bench/results/storm-W/.
#   --rate     open loop at this many calls/s (default: closed loop, 512 in
#              flight); results go to bench/results/storm-W-N/.
#   --issuer   kafka (default) or redis; redis results go to
#              bench/results/storm-redis-W[-N]/.
# Needs the local stack (scripts/stack start) and this tree's flashsale
# (scripts/build). Empties the sales' tables and Redis before each run.
# Stops and starts the services of this stack's LOCAL_DIR,
# and leaves them stopped. Raw reports go to bench/results/storm/, the table
# to bench/results/storm/storm.md (which docs/benchmarks-other-sittings.md includes).
# Check `uptime` before and after: figures taken beside a build are not figures.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../scripts/lib.sh"
# shellcheck source=bench/compare/lib.sh
source "$here/compare/lib.sh"  # empty_tables

ROUNDS=3
REQUESTS=""
WORKLOAD=soldout
RATE=""
ISSUER=kafka
BUILDS=()
for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS="${arg#*=}" ;;
    --requests=*) REQUESTS="${arg#*=}" ;;
    --workload=*) WORKLOAD="${arg#*=}" ;;
    --rate=*) RATE="${arg#*=}" ;;
    --issuer=*) ISSUER="${arg#*=}" ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *=*) BUILDS+=("$arg") ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done
((${#BUILDS[@]} > 0)) || die "name at least one build: NAME=BUILD_DIR (see --help)"
FLASHSALE="${FLASHSALE:-$REPO_ROOT/build/bench/flashsale}"
[[ -x "$FLASHSALE" ]] || die "$FLASHSALE is missing: run scripts/build first"
need_cmd jq
for b in "${BUILDS[@]}"; do
  dir="${b#*=}"
  for bin in gateway/coupon-gateway issuer-worker/coupon-issuer-worker; do
    [[ -x "$dir/$bin" ]] || die "${b%%=*}: $dir/$bin is missing"
  done
done

[[ "$ISSUER" == kafka || "$ISSUER" == redis ]] || die "--issuer: kafka or redis, got '$ISSUER'"
OUT="$REPO_ROOT/bench/results/storm"
[[ "$ISSUER" == kafka ]] || OUT+="-$ISSUER"
[[ "$WORKLOAD" == soldout && -z "$RATE" && "$ISSUER" == kafka ]] || OUT+="-$WORKLOAD"
[[ -z "$RATE" ]] || OUT+="-$RATE"
mkdir -p "$OUT"
for b in "${BUILDS[@]}"; do rm -f -- "$OUT/${b%%=*}"-*.json "$OUT/${b%%=*}"-*.txt; done
uptime_before="$(uptime)"
log "uptime before: $uptime_before"
"$REPO_ROOT/scripts/services" stop >/dev/null 2>&1 || true
for ((round = 1; round <= ROUNDS; round++)); do
  for b in "${BUILDS[@]}"; do
    name="${b%%=*}" dir="${b#*=}"
    # Every run starts from empty tables: the recorder's inserts cost more as
    # issue_results grows, and the builds must not pay for each other's rows.
    empty_tables
    ISSUER="$ISSUER" BUILD_DIR="$dir" WORKERS=1 "$REPO_ROOT/scripts/services" start >/dev/null
    pg_pid="$(head -1 "$DATA_DIR/pg/postmaster.pid")"
    args=(--workload "$WORKLOAD" --progress=false --target "127.0.0.1:$GATEWAY_PORT"
          --issuer "$ISSUER" --json_out "$OUT/$name-$round.json")
    if [[ "$ISSUER" == kafka ]]; then
      args+=(--pid_files "gateway=$RUN_DIR/gateway.pid,worker=$RUN_DIR/worker-1.pid"
             --pids "kafka=$(read_pid "$RUN_DIR/kafka.pid"),postgres=$pg_pid")
    else
      args+=(--pid_files "gateway=$RUN_DIR/gateway.pid,outbox=$RUN_DIR/outbox.pid"
             --pids "redis=$(read_pid "$RUN_DIR/redis.pid"),postgres=$pg_pid"
             --redis_addr "$REDIS_ADDR")
    fi
    [[ -n "$REQUESTS" ]] && args+=(--requests "$REQUESTS")
    [[ -n "$RATE" ]] && args+=(--rate "$RATE")
    "$FLASHSALE" "${args[@]}" >"$OUT/$name-$round.txt" 2>&1 ||
      die "$name round $round: flashsale failed (see $OUT/$name-$round.txt)"
    [[ "$(jq -r .invariants_ok "$OUT/$name-$round.json")" == true ]] ||
      die "$name round $round broke an invariant (see $OUT/$name-$round.txt)"
    log "$name round $round: $(jq -r '[.cpu[] | "\(.name) \(.seconds * 1000 / '"$(jq .requests "$OUT/$name-$round.json")"' | . * 10000 | round / 10000)"] | join(", ")' "$OUT/$name-$round.json")"
    ISSUER="$ISSUER" BUILD_DIR="$dir" "$REPO_ROOT/scripts/services" stop >/dev/null
  done
done
uptime_after="$(uptime)"
log "uptime after: $uptime_after"

# The median of each build's rounds, per process: CPU seconds per 1,000 calls.
table() {
  printf '| build |'
  jq -r '[.cpu[].name] | join(" | ")' "$OUT/${BUILDS[0]%%=*}-1.json" | sed 's/$/ |/'
  printf '|---|'
  jq -r '[.cpu[] | "---"] | join("|")' "$OUT/${BUILDS[0]%%=*}-1.json" | sed 's/$/|/'
  for b in "${BUILDS[@]}"; do
    name="${b%%=*}"
    jq -s -r --arg name "$name" '
      (.[0].cpu | map(.name)) as $names
      | [ $names[] as $n
          | [ .[] | (.requests) as $r | .cpu[] | select(.name == $n) | .seconds * 1000 / $r ]
          | sort | .[(length / 2 | floor)] ]
      | "| \($name) | " + (map(. * 10000 | round / 10000 | tostring) | join(" | ")) + " |"' \
      "$OUT/$name"-*.json
  done
}
# The median of each build's rounds: the latencies, in ms.
latencies() {
  printf '| build | IssueCoupon p50 | IssueCoupon p99 | accept -> result p50 | accept -> result p99 |\n'
  printf '|---|---|---|---|---|\n'
  for b in "${BUILDS[@]}"; do
    name="${b%%=*}"
    jq -s -r --arg name "$name" '
      def med(f): [ .[] | f // 0 ] | sort | .[(length / 2 | floor)] | . * 10 | round / 10;
      def e2e(f): if ([ .[] | .end_to_end_latency.count // 0 ] | max) == 0 then "–"
                  else med(f) end;
      "| \($name) | \(med(.issue_latency.p50_ms)) | \(med(.issue_latency.p99_ms)) | \(e2e(.end_to_end_latency.p50_ms)) | \(e2e(.end_to_end_latency.p99_ms)) |"' \
      "$OUT/$name"-*.json
  done
}
{
  if [[ "$ISSUER" == redis ]]; then
    printf '# Builds side by side: the Redis issuer, the %s workload%s\n\n' "$WORKLOAD" \
      "${RATE:+ at $RATE calls/s}"
  elif [[ -n "$RATE" ]]; then
    printf '# Builds side by side: the %s workload at %s calls/s\n\n' "$WORKLOAD" "$RATE"
  elif [[ "$WORKLOAD" == soldout ]]; then
    printf '# What the sold-out storm costs\n\n'
  else
    printf '# Builds side by side: the %s workload\n\n' "$WORKLOAD"
  fi
  printf 'Measured by `bench/storm.sh --rounds=%s --workload=%s%s%s %s` at %s (commit %s).\n\n' \
    "$ROUNDS" "$WORKLOAD" "${RATE:+ --rate=$RATE}" "$([[ "$ISSUER" == redis ]] && echo " --issuer=redis")" "${BUILDS[*]}" \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(git -C "$REPO_ROOT" rev-parse --short HEAD)"
  printf '```\nuptime before: %s\nuptime after:  %s\n```\n\n' "$uptime_before" "$uptime_after"
  printf 'CPU seconds per 1,000 calls, the median of the rounds:\n\n'
  table
  printf '\nLatency in ms, the median of the rounds (accept -> result: from the\n'
  printf 'ACCEPTED answer to the result on the coupon'"'"'s stream; – when no call\n'
  printf 'was ACCEPTED):\n\n'
  latencies
} >"$OUT/storm.md"
echo
cat "$OUT/storm.md"
log "wrote $OUT/storm.md"
