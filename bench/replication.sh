#!/usr/bin/env bash
# bench/replication.sh — what replication costs, in one sitting (issue 11): the
# Kafka issuer's hot and spread workloads on the single-node stack, then on the
# replicated one (three KRaft brokers, topics of replication factor 3 with
# min.insync.replicas=2, and a synchronous PostgreSQL standby), with the same
# services, sizes and seed. Per run: requests/s, accepted/s, decisions/s,
# IssueCoupon and end-to-end latency, and CPU seconds per 1,000 calls for the
# whole machine and for each process (flashsale's /proc accounting).
#
# Usage: bench/replication.sh [--smoke] [--repeat=N]
#   --smoke     small sizes, a minute or two: proves the script, not the figures
#   --repeat=N  run each (layout, workload) N times, alternating the layouts
#               (default 1); the table gives the medians
#   --report    only print the table of the results already in RESULTS_DIR
# Env: RESULTS_DIR (default bench/results/replication, or
#      .local/bench-replication-smoke with --smoke), BUILD_DIR, plus
#      scripts/lib.sh's ports (the replicated stack also takes
#      KAFKA_PORT + 10, + 20, their controllers', and PG_STANDBY_PORT).
# Writes RESULTS_DIR/replication.md (the table for docs/benchmarks-other-sittings.md) and the
# raw flashsale reports beside it. The stack is left in the layout it had.
# Needs the machine to itself: other load skews every figure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=bench/compare/lib.sh
source bench/compare/lib.sh

SMOKE=0
REPEAT=1
REPORT_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    --repeat=*) REPEAT="${arg#*=}" ;;
    --report) REPORT_ONLY=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer"
if ((SMOKE)); then
  RESULTS_DIR="${RESULTS_DIR:-$LOCAL_DIR/bench-replication-smoke}"
  HOT_SIZES=(--requests 4000 --users 2000 --stock 200)
  SPREAD_SIZES=(--requests 4000 --users 2000 --coupons 10 --stock 50)
else
  RESULTS_DIR="${RESULTS_DIR:-$REPO_ROOT/bench/results/replication}"
  HOT_SIZES=() SPREAD_SIZES=()  # the workloads' own sizes (flashsale --help)
fi
export RESULTS_DIR SMOKE

STACK="$REPO_ROOT/scripts/stack"
# The layouts compared: name, KAFKA_NODES, PG_STANDBY.
LAYOUTS=("single 1 none" "replicated 3 sync")
layout_before="$KAFKA_NODES $PG_STANDBY"

# use_layout NODES STANDBY: stop the stack and start it in that layout (the
# services follow KAFKA_BROKERS / PG_DSN, which scripts/lib.sh derives from it).
use_layout() {
  export KAFKA_NODES="$1" PG_STANDBY="$2"
  KAFKA_BROKERS="$(kafka_bootstrap)"
  PG_DSN="$(stack_pg_dsn)"
  export KAFKA_BROKERS PG_DSN
  scripts/services stop >/dev/null 2>&1 || true
  "$STACK" stop >>"$RESULTS_DIR/stack.log" 2>&1
  "$STACK" start >>"$RESULTS_DIR/stack.log" 2>&1 || die "scripts/stack start (KAFKA_NODES=$1 PG_STANDBY=$2) failed, see $RESULTS_DIR/stack.log"
  scripts/migrate >>"$RESULTS_DIR/stack.log" 2>&1 || die "scripts/migrate failed, see $RESULTS_DIR/stack.log"
}

restore() {
  local rc=$?
  trap - EXIT
  set +e
  scripts/services stop >/dev/null 2>&1
  if [[ "$KAFKA_NODES $PG_STANDBY" != "$layout_before" ]]; then
    log "restoring the stack's layout: KAFKA_NODES=${layout_before% *} PG_STANDBY=${layout_before#* }"
    (use_layout ${layout_before}) || rc=1
  fi
  exit "$rc"
}

# The table: one row per figure, single against replicated, per workload
# (medians over the rounds), and the ratio.
report() {
  local workload rounds
  rounds="$(find "$RESULTS_DIR" -maxdepth 1 -name 'single-hot-r*.json' | wc -l)"
  printf '# What replication costs\n\n'
  printf 'Measured by `bench/replication.sh%s` (%s round(s)); machine:\n\n```\n%s\n```\n\n' \
    "$( ((SMOKE)) && echo ' --smoke')" "$rounds" \
    "$(cat "$RESULTS_DIR/machine.txt" "$RESULTS_DIR/uptime.txt" 2>/dev/null)"
  printf 'single: one KRaft broker (replication factor 1), one PostgreSQL.\n'
  printf 'replicated: three KRaft brokers (replication factor 3, `min.insync.replicas=2`, producer `acks=all`),\n'
  printf 'PostgreSQL with a synchronous standby (`synchronous_commit=on`, `synchronous_standby_names` = the standby).\n'
  printf 'Same services (1 gateway, 1 worker), sizes and seeds. CPU: seconds per 1,000 calls, from /proc.\n\n'
  for workload in hot spread; do
    printf '## %s workload\n\n| figure | single | replicated | replicated / single |\n|---|---|---|---|\n' "$workload"
    jq -r -n --arg w "$workload" '
      def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
      def cpu($who): [.cpu[] | select(.name == $who or (.name | startswith($who + "-"))) | .seconds_per_1000_requests // empty] | add;
      def show($v; $scale): if $v == null then "–" else ($v * $scale | round) / $scale | tostring end;
      def row($title; $s; $r; $scale):
        "| \($title) | \(show($s; $scale)) | \(show($r; $scale)) | \(if ($s // 0) != 0 and $r != null then ((($r / $s) * 100 | round) / 100 | tostring) + "×" else "–" end) |";
      [inputs | . + {run_file: (input_filename | split("/") | last)}] as $all |
      ($all | map(select(.run_file | startswith("single-" + $w + "-")))) as $single |
      ($all | map(select(.run_file | startswith("replicated-" + $w + "-")))) as $repl |
      def both(f; $title; $scale): row($title; ([$single[] | f] | med); ([$repl[] | f] | med); $scale);
      both(.requests_per_second; "requests/s"; 1),
      both(.accepted_per_second; "accepted/s"; 1),
      both(.decisions_per_second; "decisions/s"; 1),
      both(.issue_latency.p50_ms; "IssueCoupon p50 ms"; 100),
      both(.issue_latency.p99_ms; "IssueCoupon p99 ms"; 100),
      both(.end_to_end_latency.p50_ms; "end-to-end p50 ms"; 100),
      both(.end_to_end_latency.p99_ms; "end-to-end p99 ms"; 100),
      both(.first_send_to_last_result_seconds; "first send → last result s"; 100),
      both(cpu("machine"); "CPU s / 1,000 calls: whole machine"; 10000),
      both(cpu("gateway"); "CPU s / 1,000 calls: gateway"; 10000),
      both(cpu("worker-1"); "CPU s / 1,000 calls: worker"; 10000),
      both(cpu("kafka"); "CPU s / 1,000 calls: Kafka (every node)"; 10000),
      both(cpu("postgres"); "CPU s / 1,000 calls: PostgreSQL (every node)"; 10000),
      both(if .invariants_ok then 1 else 0 end; "invariants held (1 = yes)"; 1)
    ' "$RESULTS_DIR"/single-"$workload"-r*.json "$RESULTS_DIR"/replicated-"$workload"-r*.json
    printf '\n'
  done
  printf 'Runs: %s.\n' "$(cd "$RESULTS_DIR" && ls -- *-r*.json | sed 's/\.json$//' | paste -sd' ' | sed 's/ /, /g')"
}
if ((REPORT_ONLY)); then
  report
  exit 0
fi

scripts/build >/dev/null
rm -rf -- "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR"
trap restore EXIT
describe_machine >"$RESULTS_DIR/machine.txt"
echo "uptime before: $(uptime)" >"$RESULTS_DIR/uptime.txt"

for ((round = 1; round <= REPEAT; round++)); do
  for layout in "${LAYOUTS[@]}"; do
    read -r name nodes standby <<<"$layout"
    log "== $name stack (KAFKA_NODES=$nodes PG_STANDBY=$standby), round $round"
    use_layout "$nodes" "$standby"
    for workload in hot spread; do
      start_services kafka 1
      sizes=("${HOT_SIZES[@]+"${HOT_SIZES[@]}"}")
      [[ "$workload" == spread ]] && sizes=("${SPREAD_SIZES[@]+"${SPREAD_SIZES[@]}"}")
      run_flashsale "$name-$workload-r$round" --issuer kafka --workload "$workload" --seed "$round" \
        "${sizes[@]+"${sizes[@]}"}"
      record_rss "$name-$workload-r$round"
      scripts/services stop >/dev/null
    done
  done
done

echo "uptime after:  $(uptime)" >>"$RESULTS_DIR/uptime.txt"
report >"$RESULTS_DIR/replication.md"
cat "$RESULTS_DIR/replication.md"
log "wrote $RESULTS_DIR/replication.md"
check_invariants "$RESULTS_DIR" 'single-*.json' 'replicated-*.json'
