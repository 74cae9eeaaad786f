#!/usr/bin/env bash
# bench/compare.sh — the design's two systems measured side by side, with the
# ceilings of this machine beside them, in one sitting. Rewrites
# docs/benchmarks.md and the plots under docs/bench/.
#
#   1. ceilings: a bare gRPC server (bench/bare_server) driven by flashsale and
#      by ghz; pgbench with one transaction per event and with the worker's
#      batches; Kafka's own producer and consumer perf tools;
#   2. flashsale over every workload (hot, spread, retry, soldout) against the
#      Kafka issuer and the Redis issuer, each on freshly started services;
#   3. ghz against the gateway, to cross-check flashsale's own figures;
#   4. the Kafka path's decisions/s with 1, 2 and 3 workers (spread workload);
#   5. a perf profile of the whole machine during a hot sale, per issuer;
#   6. latency against load: the spread workload open loop at 500, 1,000,
#      2,000, 5,000 and 10,000 calls/s and closed loop (saturation), both
#      issuers, and the bare gRPC server at the same open-loop rates (what
#      gRPC and the load generator alone cost per call there);
#   7. the worker's drain of a 200,000-event backlog (over 100 coupons and
#      on one hot coupon) beside pgbench running the worker's own
#      transaction at the batch size the worker reached;
#   8. bench/ceilings.sh: the gateway against the callback and the
#      completion-queue bare servers;
#   9. bench/compare/report.py turns the results into docs/benchmarks.md
#      (this sitting only) and docs/benchmarks-other-sittings.md (the
#      one-question benches' own tables), and gnuplot draws the plots.
# The sales' tables are emptied first (TRUNCATE), so that every sitting starts
# from the same database.
#
# Usage: bench/compare.sh [--smoke] [--no-docs]
#   --smoke    small sizes, a minute or two: proves the script, not the figures
#   --no-docs  leave docs/ alone (results still go to RESULTS_DIR)
# Env: RESULTS_DIR (default bench/results/latest, or .local/bench-smoke with
#      --smoke), BUILD_DIR (default build/), GHZ_VERSION (default v0.120.0),
#      plus scripts/lib.sh's ports.
# Needs the machine to itself: other load skews every figure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=bench/compare/lib.sh
source bench/compare/lib.sh

SMOKE=0
DOCS=1
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --no-docs) DOCS=0 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done
if ((SMOKE)); then
  RESULTS_DIR="${RESULTS_DIR:-$LOCAL_DIR/bench-smoke}"
  DOCS=0
else
  RESULTS_DIR="${RESULTS_DIR:-$REPO_ROOT/bench/results/latest}"
fi
export RESULTS_DIR SMOKE

install_bench_deps
scripts/build >/dev/null
scripts/stack start
scripts/migrate >/dev/null
scripts/services stop >/dev/null 2>&1 || true
# Described before the results are removed: bench/results/latest is in git,
# and removing it would make every sitting's tree look modified.
machine="$(describe_machine)"
rm -rf -- "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR"
echo "$machine" >"$RESULTS_DIR/machine.txt"
echo "uptime before: $(uptime)" >>"$RESULTS_DIR/machine.txt"
log "$(tail -1 "$RESULTS_DIR/machine.txt")"
empty_tables

# Sizes. The full run uses the workloads' defaults (flashsale --help).
if ((SMOKE)); then
  SIZES=(--requests 4000 --users 2000 --stock 200)
  SPREAD_SIZES=(--requests 4000 --users 2000 --coupons 10 --stock 50)
  SOLDOUT_SIZES=(--requests 4000 --users 4000 --stock 200 --presell 200)
  CEILING_CALLS=4000 PGBENCH_SECONDS=2 KAFKA_RECORDS=50000 PERF_SECONDS=2
  CURVE_RATES=(500 2000) CURVE_SECONDS=2 CURVE_MIN_CALLS=1000 CURVE_SATURATION_CALLS=4000
  DRAIN_CALLS=4000 CEILING_ROUNDS=1
else
  SIZES=() SPREAD_SIZES=() SOLDOUT_SIZES=()
  CEILING_CALLS=200000 PGBENCH_SECONDS=15 KAFKA_RECORDS=1000000 PERF_SECONDS=8
  CURVE_RATES=(500 1000 2000 5000 10000) CURVE_SECONDS=10 CURVE_MIN_CALLS=10000
  CURVE_SATURATION_CALLS=100000 DRAIN_CALLS=200000 CEILING_ROUNDS=2
fi
export CURVE_SECONDS CURVE_MIN_CALLS CURVE_SATURATION_CALLS
sizes_of() {  # workload -> extra flashsale flags
  case "$1" in
    spread) echo "${SPREAD_SIZES[@]}" ;;
    soldout) echo "${SOLDOUT_SIZES[@]}" ;;
    *) echo "${SIZES[@]}" ;;
  esac
}

log "== ceilings"
ceiling_bare_grpc "$CEILING_CALLS"
ceiling_pgbench "$PGBENCH_SECONDS"
ceiling_kafka "$KAFKA_RECORDS"

for issuer in kafka redis; do
  for workload in hot spread retry soldout; do
    log "== $issuer issuer, $workload workload"
    start_services "$issuer" 1
    # shellcheck disable=SC2046
    run_flashsale "$issuer-$workload" --issuer "$issuer" --workload "$workload" \
      $(sizes_of "$workload")
    record_rss "$issuer-$workload"
    scripts/services stop >/dev/null
  done
  log "== $issuer issuer: ghz against the gateway"
  start_services "$issuer" 1
  ghz_gateway "$issuer" "$CEILING_CALLS"
  scripts/services stop >/dev/null
  log "== $issuer issuer: perf profile of a hot sale"
  start_services "$issuer" 1
  # shellcheck disable=SC2046
  profile_hot_sale "$issuer" "$PERF_SECONDS" $(sizes_of hot)
  scripts/services stop >/dev/null
done

log "== Kafka issuer: workers 1, 2, 3 on the spread workload"
for workers in 1 2 3; do
  start_services kafka "$workers"
  # shellcheck disable=SC2046
  run_flashsale "kafka-spread-w$workers" --issuer kafka --workload spread \
    $(sizes_of spread)
  scripts/services stop >/dev/null
done

log "== latency against load: the spread workload, open loop, both issuers and the bare server"
for issuer in kafka redis; do
  for rate in "${CURVE_RATES[@]}" 0; do
    curve_point "$issuer" "$rate"
  done
  curve_tsv "$RESULTS_DIR" "$issuer"
done
for rate in "${CURVE_RATES[@]}"; do curve_bare_point "$rate"; done
curve_tsv "$RESULTS_DIR" bare

log "== the worker's drain of a backlog, and pgbench running its transaction"
drain_backlog drain-spread --workload spread --requests "$DRAIN_CALLS" --users $((DRAIN_CALLS / 2))
drain_backlog drain-hot --workload hot --requests "$DRAIN_CALLS" --users $((DRAIN_CALLS / 2))
for workload in spread hot; do
  # The worker's mean batch, and its share of copies (the rest are results only).
  batch="$(awk '/^batch_mean / { printf "%d", $2 + 0.5 }' "$RESULTS_DIR/drain-$workload.worker")"
  issued="$(jq -r --argjson b "${batch:-0}" \
    '(.results_by_outcome.ISSUED // 0) * $b / .decisions + 0.5 | floor' "$RESULTS_DIR/drain-$workload.json")"
  coupons="$(jq -r .coupons "$RESULTS_DIR/drain-$workload.json")"
  ((batch > 0)) || die "drain-$workload: no batch size in $RESULTS_DIR/drain-$workload.worker"
  pgbench_worker_batches "worker-$workload" "$batch" "$issued" "$coupons" "$PGBENCH_SECONDS"
done

log "== the ceilings of gRPC: bench/ceilings.sh"
CEILINGS_OUT="$RESULTS_DIR/ceilings" bench/ceilings.sh --rounds="$CEILING_ROUNDS" \
  --requests="$CEILING_CALLS" >"$RESULTS_DIR/ceilings.log" 2>&1 ||
  die "bench/ceilings.sh failed ($RESULTS_DIR/ceilings.log)"
echo "uptime after: $(uptime)" >>"$RESULTS_DIR/machine.txt"
echo "duration: $((SECONDS / 60)) min" >>"$RESULTS_DIR/machine.txt"
log "$(tail -2 "$RESULTS_DIR/machine.txt" | paste -sd' ')"

log "== plots and report"
draw_plots "$RESULTS_DIR"
if ((DOCS)); then
  rm -rf -- docs/bench
  mkdir -p docs/bench
  cp "$RESULTS_DIR"/*.png docs/bench/
  python3 bench/compare/report.py "$RESULTS_DIR" docs/bench docs/benchmarks-other-sittings.md \
    >docs/benchmarks.md
  log "wrote docs/benchmarks.md, docs/benchmarks-other-sittings.md and docs/bench/*.png from $RESULTS_DIR"
else
  python3 bench/compare/report.py "$RESULTS_DIR" "$RESULTS_DIR" \
    "$RESULTS_DIR/benchmarks-other-sittings.md" >"$RESULTS_DIR/benchmarks.md"
  log "wrote $RESULTS_DIR/benchmarks.md"
fi
check_invariants "$RESULTS_DIR" 'kafka-*.json' 'redis-*.json' 'curve-kafka-*.json' \
  'curve-redis-*.json' 'drain-*.json'
