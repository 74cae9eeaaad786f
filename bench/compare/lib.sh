# bench/compare/lib.sh — the steps of bench/compare.sh, sourced after
# scripts/lib.sh. Every step writes its raw output to $RESULTS_DIR, where
# bench/compare/report.py reads it back.

GHZ_VERSION="${GHZ_VERSION:-v0.120.0}"
BARE_PORT="${BARE_PORT:-50061}"
export BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/build}"
FLASHSALE="$BUILD_DIR/bench/flashsale"
BARE_SERVER="$BUILD_DIR/bench/bare-grpc-server"
KAFKA_JAVA=(java -Xmx512m -XX:+UseSerialGC -cp "$KAFKA_LIBS/*")

# install_bench_deps: gnuplot, perf and python3 from Debian, ghz with
# `go install` into .local/bin; only what is missing.
install_bench_deps() {
  local missing=() pkg
  for pkg in gnuplot-nox python3 linux-perf; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] ||
      missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
  if [[ ! -x "$LOCAL_BIN/ghz" ]]; then
    need_cmd go golang-go
    log "installing ghz $GHZ_VERSION with go install"
    mkdir -p "$LOCAL_BIN"
    GOBIN="$LOCAL_BIN" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" ||
      die "go install ghz failed"
  fi
}

describe_machine() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git -C "$REPO_ROOT" rev-parse --short HEAD)$(git -C "$REPO_ROOT" diff --quiet HEAD || echo ' (with uncommitted changes)')"
  echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cores: $(nproc)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "kafka: $(ls "$KAFKA_LIBS" | sed -n 's/^kafka_2.13-\(.*\)\.jar$/\1/p' | head -1)"
  echo "postgresql: $(postgres_bin postgres --version 2>/dev/null | awk '{print $3}')"
  echo "redis: $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
  echo "grpc: $(dpkg-query -W -f='${Version}' libgrpc++-dev 2>/dev/null)"
  echo "smoke: $SMOKE"
}

postgres_bin() {  # name args...: a PostgreSQL 15 program
  local bin="/usr/lib/postgresql/15/bin/$1"
  shift
  "$bin" "$@"
}

# start_services ISSUER WORKERS: fresh services, then a small unmeasured sale
# so that connections, caches and the JIT-less paths are warm.
start_services() {
  # Returns once the gateway serves (its /readyz, health SERVING).
  ISSUER="$1" WORKERS="$2" scripts/services start >/dev/null
  # shellcheck disable=SC2046
  "$FLASHSALE" --target "127.0.0.1:$GATEWAY_PORT" --issuer "$1" --progress=false \
    --requests 2000 --users 1000 \
    --stock 100 >/dev/null 2>"$RESULTS_DIR/warmup.log" ||
    die "the warm-up sale failed ($RESULTS_DIR/warmup.log)"
}

# server_pid_files: name=pid-file of every server of the stack's layout (each
# Kafka node, each PostgreSQL node), comma-separated.
server_pid_files() {
  local n files=""
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    files+="kafka$(kafka_node_suffix "$n")=$(kafka_node_pidfile "$n"),"
  done
  files+="redis=$RUN_DIR/redis.pid"
  if pg_ha; then
    for n in 1 2; do files+=",postgres-$n=$(pg_node_data "$n")/postmaster.pid"; done
  else
    files+=",postgres=$(pg_node_data 1)/postmaster.pid"
  fi
  echo "$files"
}

pid_files() {  # the services' pid files, for flashsale's CPU accounting
  local files="gateway=$RUN_DIR/gateway.pid" f
  for f in "$RUN_DIR"/worker-*.pid "$RUN_DIR"/outbox.pid; do
    [[ -e "$f" ]] && files+=",$(basename "$f" .pid)=$f"
  done
  echo "$files,$(server_pid_files)"
}

# run_flashsale NAME FLAGS...: one flashsale run into $RESULTS_DIR/NAME.*.
# A broken invariant is recorded (check_invariants fails the script at the
# end); a run that cannot be carried out stops the script.
run_flashsale() {
  local name="$1" rc=0
  shift
  local extra=()
  [[ " $* " == *" --issuer redis "* ]] && extra+=(--redis_addr "$REDIS_ADDR")
  # shellcheck disable=SC2046
  "$FLASHSALE" --target "127.0.0.1:$GATEWAY_PORT" --progress=false --pid_files "$(pid_files)" \
    --json_out "$RESULTS_DIR/$name.json" --markdown_out "$RESULTS_DIR/$name.md" \
    --plot_data "$RESULTS_DIR/$name" "${extra[@]}" "$@" \
    >"$RESULTS_DIR/$name.txt" 2>"$RESULTS_DIR/$name.log" || rc=$?
  case "$rc" in
    0) log "$name: $(grep -E '^send phase' "$RESULTS_DIR/$name.txt")" ;;
    1) warn "$name: INVARIANTS VIOLATED, see $RESULTS_DIR/$name.txt" ;;
    *) die "$name: flashsale exited $rc, see $RESULTS_DIR/$name.log" ;;
  esac
}

rss_kb() {  # pid: resident kB of the process and its descendants
  local total=0 p kb
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

record_rss() {  # name: resident memory of every server after the run
  local f entry
  {
    for f in "$RUN_DIR"/gateway.pid "$RUN_DIR"/worker-*.pid "$RUN_DIR"/outbox.pid; do
      [[ -e "$f" ]] && echo "$(basename "$f" .pid) $(rss_kb "$(read_pid "$f")")"
    done
    for entry in $(server_pid_files | tr ',' ' '); do
      f="${entry#*=}"
      [[ -e "$f" ]] && echo "${entry%%=*} $(rss_kb "$(head -1 "$f")")"
    done
  } >"$RESULTS_DIR/$1.rss"
}

# ghz_run NAME TARGET COUPON CALLS: ghz, closed loop with 512 in flight on one
# connection like flashsale, every call a new user and request id.
ghz_run() {
  local name="$1" target="$2" coupon="$3" calls="$4" run
  run="ghz$(date +%s)"
  "$LOCAL_BIN/ghz" --insecure --call coupon.v1.CouponService/IssueCoupon \
    -d "{\"coupon_id\": $coupon, \"user_id\": \"$run-{{.RequestNumber}}\", \"request_id\": \"$run-{{.RequestNumber}}\"}" \
    -n "$calls" -c 512 --connections 1 --timeout 5s --format json \
    -o "$RESULTS_DIR/$name.json" "$target" 2>"$RESULTS_DIR/$name.log" ||
    die "$name: ghz failed ($RESULTS_DIR/$name.log)"
  # Keep the summary; the per-call details run to tens of megabytes.
  jq 'del(.details)' "$RESULTS_DIR/$name.json" >"$RESULTS_DIR/$name.json.tmp" &&
    mv -f -- "$RESULTS_DIR/$name.json.tmp" "$RESULTS_DIR/$name.json"
  log "$name: $(jq -r '"\(.rps | floor) requests/s, \(.statusCodeDistribution)"' "$RESULTS_DIR/$name.json")"
}

# bare_server_start LOG: bench/bare_server on BARE_PORT, its pid in BARE_PID
# (and RUN_DIR/bare.pid), once it listens. bare_server_stop ends it.
bare_server_start() {
  "$BARE_SERVER" --listen "127.0.0.1:$BARE_PORT" >"$1" 2>&1 &
  BARE_PID=$!
  echo "$BARE_PID" >"$RUN_DIR/bare.pid"
  wait_for_port 127.0.0.1 "$BARE_PORT" 10 bare-grpc-server "$1" "$BARE_PID"
}
bare_server_stop() {
  kill "$BARE_PID"
  wait "$BARE_PID" 2>/dev/null || true
  rm -f -- "$RUN_DIR/bare.pid"
}

ceiling_bare_grpc() {  # calls
  bare_server_start "$RESULTS_DIR/bare.log"
  local pid="$BARE_PID"
  "$FLASHSALE" --target "127.0.0.1:$BARE_PORT" --verify=false --progress=false \
    --requests "$1" --pids "bare=$pid" --json_out "$RESULTS_DIR/bare-flashsale.json" \
    >"$RESULTS_DIR/bare-flashsale.txt" 2>&1 || die "flashsale against the bare server failed"
  log "bare-flashsale: $(grep -E '^send phase' "$RESULTS_DIR/bare-flashsale.txt")"
  ghz_run ghz-bare "127.0.0.1:$BARE_PORT" 1 "$1"
  bare_server_stop
}

ghz_gateway() {  # issuer calls: ghz against the gateway, one coupon of 10,000
  local coupon auth=()
  if [[ -s "$ADMIN_TOKEN_FILE" ]]; then
    auth=(-H "authorization: Bearer $(head -1 "$ADMIN_TOKEN_FILE")")
  fi
  coupon="$("$LOCAL_BIN/grpcurl" -plaintext "${auth[@]}" \
    -d '{"name": "ghz cross-check", "total_quantity": 10000}' \
    "127.0.0.1:$GATEWAY_PORT" coupon.v1.CouponService/CreateCoupon | jq -r .coupon_id)"
  [[ "$coupon" =~ ^[0-9]+$ ]] || die "CreateCoupon for ghz failed"
  ghz_run "ghz-gateway-$1" "127.0.0.1:$GATEWAY_PORT" "$coupon" "$2"
}

psql_coupon() { psql "$PG_DSN" -qtAX -v ON_ERROR_STOP=1 -c "$1"; }

# ceiling_pgbench SECONDS: the worker's statements, one transaction per event
# (1 and 8 clients) and one per 500 events (1 client). They run on copies of
# the three tables, with the same indexes, constraints and foreign keys, in a
# schema of their own that is dropped afterwards: deleting rows from the real
# tables would take long (issue_results has no index on user_coupon_id, so
# each deleted user_coupons row scans it for the foreign key).
ceiling_pgbench() {
  local schema=pgbench_ceiling coupon
  psql_coupon "SET client_min_messages = warning;
    DROP SCHEMA IF EXISTS $schema CASCADE;
    CREATE SCHEMA $schema;
    CREATE TABLE $schema.coupons (LIKE public.coupons INCLUDING ALL);
    CREATE TABLE $schema.user_coupons (LIKE public.user_coupons INCLUDING ALL,
      FOREIGN KEY (coupon_id) REFERENCES $schema.coupons);
    CREATE TABLE $schema.issue_results (LIKE public.issue_results INCLUDING ALL,
      FOREIGN KEY (user_coupon_id) REFERENCES $schema.user_coupons);" >/dev/null
  coupon="$(psql_coupon "INSERT INTO $schema.coupons (name, total_quantity, remaining_quantity)
    VALUES ('pgbench ceiling', 1000000000000, 1000000000000) RETURNING coupon_id" | head -1)"
  local run=(env PGOPTIONS="-c search_path=$schema" pgbench "$PG_DSN" -n -T "$1" -D "coupon=$coupon")
  "${run[@]}" -c 1 -f bench/compare/pgbench-naive.sql >"$RESULTS_DIR/pgbench-naive-c1.txt" 2>&1
  "${run[@]}" -c 8 -j 2 -f bench/compare/pgbench-naive.sql >"$RESULTS_DIR/pgbench-naive-c8.txt" 2>&1
  "${run[@]}" -c 1 -M prepared -D batch=500 -D issued=500 -D ncoupons=1 \
    -f bench/compare/pgbench-batched.sql \
    >"$RESULTS_DIR/pgbench-batched-c1.txt" 2>&1
  psql_coupon "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" >/dev/null
  local f
  for f in naive-c1 naive-c8 batched-c1; do
    log "pgbench $f: $(grep -E '^tps' "$RESULTS_DIR/pgbench-$f.txt")"
  done
}

# ceiling_kafka RECORDS: Kafka's own perf tools on a topic like ours (10
# partitions, 80-byte records, acks=all, idempotent), deleted afterwards.
ceiling_kafka() {
  local topic=bench-perf
  timeout 120 "${KAFKA_JAVA[@]}" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$KAFKA_BROKERS" --delete --if-exists --topic "$topic" >/dev/null 2>&1 || true
  timeout 120 "${KAFKA_JAVA[@]}" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$KAFKA_BROKERS" --create --if-not-exists --topic "$topic" \
    --partitions 10 --replication-factor 1 >/dev/null || die "creating $topic failed"
  timeout 600 "${KAFKA_JAVA[@]}" org.apache.kafka.tools.ProducerPerformance \
    --topic "$topic" --num-records "$1" --record-size 80 --throughput -1 \
    --producer-props "bootstrap.servers=$KAFKA_BROKERS" acks=all enable.idempotence=true linger.ms=5 \
    >"$RESULTS_DIR/kafka-producer.txt" 2>&1 || die "ProducerPerformance failed"
  timeout 600 "${KAFKA_JAVA[@]}" org.apache.kafka.tools.ConsumerPerformance \
    --bootstrap-server "$KAFKA_BROKERS" --topic "$topic" --messages "$1" --timeout 60000 \
    >"$RESULTS_DIR/kafka-consumer.txt" 2>&1 || die "ConsumerPerformance failed"
  timeout 120 "${KAFKA_JAVA[@]}" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$KAFKA_BROKERS" --delete --topic "$topic" >/dev/null 2>&1 || true
  log "kafka producer: $(tail -1 "$RESULTS_DIR/kafka-producer.txt" | cut -d, -f1-3)"
}

# profile_hot_sale ISSUER SECONDS FLAGS...: perf samples this stack's
# processes while a hot sale runs; flat profiles by thread name and, for the gateway,
# by function. Figures of this run are not reported: perf costs CPU.
profile_hot_sale() {
  local issuer="$1" seconds="$2" data="$RESULTS_DIR/perf-$1.data" gw
  shift 2
  gw="$(read_pid "$RUN_DIR/gateway.pid")"
  # shellcheck disable=SC2046
  "$FLASHSALE" --target "127.0.0.1:$GATEWAY_PORT" --progress=false --issuer "$issuer" \
    --workload hot "$@" \
    >"$RESULTS_DIR/perf-$issuer-sale.txt" 2>&1 &
  local sale=$!
  sleep 1
  # This stack's processes only (the machine may run others): the services,
  # the servers with PostgreSQL's backends, and the load generator.
  local pids=("$sale" "$(head -1 "$DATA_DIR/pg/postmaster.pid")") f
  for f in "$RUN_DIR"/gateway.pid "$RUN_DIR"/worker-*.pid "$RUN_DIR"/outbox.pid \
    "$RUN_DIR"/kafka.pid "$RUN_DIR"/redis.pid; do
    [[ -e "$f" ]] && pids+=("$(read_pid "$f")")
  done
  pids+=($(pgrep -P "${pids[1]}" || true))
  # The whole machine is sampled (a process may come and go meanwhile); the
  # reports keep this stack's processes and count the rest as "other".
  perf record -a -F 499 -o "$data" -- sleep "$seconds" >/dev/null 2>&1 ||
    die "perf record failed"
  wait "$sale" || warn "the profiled $issuer sale exited non-zero"
  # Samples per process (the load generator and the gateway both run threads
  # named by gRPC, so thread names alone would mix them up).
  local names="" p
  for f in "$RUN_DIR"/gateway.pid "$RUN_DIR"/worker-*.pid "$RUN_DIR"/outbox.pid \
    "$RUN_DIR"/kafka.pid "$RUN_DIR"/redis.pid; do
    [[ -e "$f" ]] && names+="$(read_pid "$f") $(basename "$f" .pid)"$'\n'
  done
  names+="$sale flashsale"$'\n'
  for p in "${pids[@]:1}"; do names+="$p postgres"$'\n'; done
  perf script -i "$data" -F pid 2>/dev/null | awk -v names="$names" '
    BEGIN { n = split(names, lines, "\n"); for (i = 1; i <= n; i++) { split(lines[i], f, " "); if (f[1] != "" && !(f[1] in who)) who[f[1]] = f[2] } }
    { p = $1 + 0; name = (p in who) ? who[p] : "other"; count[name]++; total++ }
    END { for (k in count) printf "%6.2f%%  %s\n", 100 * count[k] / total, k }' |
    sort -rn >"$RESULTS_DIR/perf-$issuer-processes.txt"
  perf report -i "$data" --stdio --no-children --sort comm --percent-limit 1 \
    --pid "$(IFS=,; echo "${pids[*]}")" \
    2>/dev/null | grep -v '^#' | grep -v '^$' >"$RESULTS_DIR/perf-$issuer-threads.txt" || true
  perf report -i "$data" --stdio --no-children --pid "$gw" --sort dso,sym \
    --percent-limit 0.7 2>/dev/null | grep -v '^#' | grep -v '^$' \
    >"$RESULTS_DIR/perf-$issuer-gateway.txt" || true
  rm -f -- "$data" "$data.old"
  log "perf $issuer: $(head -4 "$RESULTS_DIR/perf-$issuer-processes.txt" | awk '{print $2 " " $1}' | paste -sd, -)"
}

# draw_plots DIR: per workload, the two issuers on one chart each for
# throughput over time, the latency distribution and copies issued over time;
# then latency and CPU against load (bench/compare/curve.gp).
draw_plots() {
  local dir="$1" workload
  for workload in hot spread retry soldout; do
    [[ -e "$dir/kafka-$workload.timeline.tsv" && -e "$dir/redis-$workload.timeline.tsv" ]] || continue
    gnuplot -e "dir='$dir'; workload='$workload'" bench/compare/plots.gp ||
      die "gnuplot failed for $workload"
  done
  if [[ -s "$dir/curve-kafka.tsv" && -s "$dir/curve-redis.tsv" ]]; then
    gnuplot -e "dir='$dir'" bench/compare/curve.gp || die "gnuplot failed for the curve"
  fi
}

# check_invariants DIR [PATTERN...]: every verified flashsale run (DIR's files
# matching the patterns, by default kafka-*.json redis-*.json) held every invariant.
check_invariants() {
  local bad=0 f dir="$1" pattern
  shift
  local -a files=()
  (($#)) || set -- 'kafka-*.json' 'redis-*.json'
  for pattern in "$@"; do files+=("$dir"/$pattern); done
  for f in "${files[@]}"; do
    [[ -e "$f" ]] || continue
    if [[ "$(jq -r '.invariants_ok' "$f")" != true ]]; then
      warn "$(basename "$f" .json): invariants violated: $(jq -c .violations "$f")"
      bad=1
    fi
  done
  ((bad == 0)) || die "a run broke an invariant"
  log "every run held every invariant"
}

# empty_tables: the sales' tables emptied (TRUNCATE: instant), and the local
# stack's Redis with them (its reservations and records name those rows), so
# that every sitting starts from the same stores, not from the rows of all
# before it. Coupon ids keep counting up (no RESTART IDENTITY). No ANALYZE
# after it: an analyzed empty table (reltuples 0) makes every new connection
# plan its foreign-key checks on user_coupons as sequential scans and keep
# those plans until autovacuum analyzes the table again, up to a minute
# later; the first hot sale then ran at 8,625 calls/s instead of 14,381
# (12,283 sequential scans of user_coupons). After TRUNCATE alone the
# planner knows it does not know the size (reltuples -1) and uses the indexes,
# until autovacuum analyzes the emptied tables on its own; the services'
# sessions no longer plan table scans either way (enable_seqscan off, see
# docs/operations.md).
empty_tables() {
  psql_coupon "TRUNCATE issue_results, coupon_outbox, user_coupons, coupons" >/dev/null
  redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}" FLUSHDB >/dev/null ||
    die "FLUSHDB on Redis at $REDIS_ADDR failed"
}

# worker_sums: worker-1's histogram sums and counts from its /metrics, one
# line: events, batches, transaction seconds, batch seconds, batches done.
worker_sums() {
  curl -fsS "http://127.0.0.1:${WORKER_METRICS_PORT:-9465}/metrics" | awk '
    /^coupon_worker_batch_events_sum / { s = $2 } /^coupon_worker_batch_events_count / { n = $2 }
    /^coupon_worker_transaction_seconds_sum / { t = $2 } /^coupon_worker_batch_seconds_sum / { b = $2 }
    /^coupon_worker_batch_seconds_count / { bn = $2 }
    END { print s + 0, n + 0, t + 0, b + 0, bn + 0 }' ||
    die "the worker's /metrics did not answer"
}

# worker_summary [SUMS_BEFORE]: worker-1's batches since SUMS_BEFORE (a line of
# worker_sums; default: since it started): how many, the mean events of one,
# the mean transaction, and the mean time from the transaction to the offset
# commit (results acknowledged in between).
worker_summary() {
  echo "$(worker_sums) ${1:-0 0 0 0 0}" | awk '{
    s = $1 - $6; n = $2 - $7; t = $3 - $8; b = $4 - $9; bn = $5 - $10
    if (n > 0) printf "batches %d\nbatch_mean %.1f\ntransaction_ms_mean %.2f\n", n, s / n, 1000 * t / n
    if (bn > 0) printf "batch_ms_mean %.2f\n", 1000 * b / bn }'
}

# curve_point ISSUER RATE: the spread workload on fresh services, open loop at
# RATE calls/s for about CURVE_SECONDS (at least CURVE_MIN_CALLS calls), or
# with RATE 0 closed loop (512 in flight) for CURVE_SATURATION_CALLS: one
# point of the latency-against-load curve, into curve-ISSUER-RATE.*.
curve_point() {
  local issuer="$1" rate="$2" calls
  if ((rate > 0)); then
    calls=$((rate * CURVE_SECONDS))
    ((calls >= CURVE_MIN_CALLS)) || calls="$CURVE_MIN_CALLS"
  else
    calls="$CURVE_SATURATION_CALLS"
  fi
  start_services "$issuer" 1
  local before=""
  [[ "$issuer" != kafka ]] || before="$(worker_sums)"
  run_flashsale "curve-$issuer-$rate" --issuer "$issuer" --workload spread \
    --requests "$calls" --users $((calls / 2)) --rate "$rate"
  [[ "$issuer" != kafka ]] || worker_summary "$before" >"$RESULTS_DIR/curve-$issuer-$rate.worker"
  scripts/services stop >/dev/null
}

# curve_bare_point RATE: the same open loop against the bare gRPC server
# (bench/bare_server, which answers at once and stores nothing): what gRPC
# and the load generator alone cost per call at RATE, the floor under every
# other line of the curve. Into curve-bare-RATE.*.
curve_bare_point() {
  local rate="$1" calls=$(($1 * CURVE_SECONDS))
  ((calls >= CURVE_MIN_CALLS)) || calls="$CURVE_MIN_CALLS"
  bare_server_start "$RESULTS_DIR/curve-bare-$rate.log"
  "$FLASHSALE" --target "127.0.0.1:$BARE_PORT" --verify=false --progress=false \
    --workload spread --requests "$calls" --users $((calls / 2)) --rate "$rate" \
    --pids "bare=$BARE_PID" --json_out "$RESULTS_DIR/curve-bare-$rate.json" \
    >"$RESULTS_DIR/curve-bare-$rate.txt" 2>&1 ||
    die "flashsale against the bare server at $rate calls/s failed (see $RESULTS_DIR/curve-bare-$rate.txt)"
  log "curve-bare-$rate: $(grep -E '^send phase' "$RESULTS_DIR/curve-bare-$rate.txt")"
  bare_server_stop
}

# curve_tsv DIR ISSUER: one line per point of the curve, by offered rate
# (saturation last): offered answered/s IssueCoupon-p50 -p99 accept->result
# -p50 -p99, then CPU s per 1,000 calls of the gateway (the bare server for
# ISSUER bare), the worker or outbox, the broker or Redis, PostgreSQL, the
# load generator and the machine.
curve_tsv() {
  local dir="$1" issuer="$2" f
  for f in "$dir"/curve-"$issuer"-*.json; do
    [[ -e "$f" ]] || continue
    jq -r '
      def c($n): ([.cpu[] | select(.name == $n or (.name | startswith($n + "-")))
                   | .seconds_per_1000_requests] | add) // "NaN";
      def e(f): if (.end_to_end_latency.count // 0) > 0 then f else "NaN" end;
      [ (if (.mode | startswith("open")) then (.mode | capture("(?<r>[0-9]+)").r) else "0" end),
        .requests_per_second, .issue_latency.p50_ms, .issue_latency.p99_ms,
        e(.end_to_end_latency.p50_ms), e(.end_to_end_latency.p99_ms),
        (c("gateway") as $g | if $g == "NaN" then c("bare") else $g end),
        (if .issuer == "kafka" then c("worker") else c("outbox") end),
        (if .issuer == "kafka" then c("kafka") else c("redis") end), c("postgres"),
        c("flashsale"), c("machine") ] | @tsv' "$f"
  done | sort -n | awk '$1 == 0 { last = $0; next } { print } END { if (last != "") print last }' \
    >"$dir/curve-$issuer.tsv"
}

# drain_backlog NAME FLAGS...: how fast one worker decides a backlog. The
# gateway queues the sale's events with no worker running (every call is
# ACCEPTED: nothing is decided yet, so nothing is known at the gateway); then
# one worker starts. flashsale's decisions/s runs from the first to the last
# decision in issue_results, so the worker's start-up is not in it. The
# worker's CPU seconds (from /proc, start-up included) and its mean batch go
# to NAME.worker.
drain_backlog() {
  local name="$1" requests=""
  shift
  local args=("$@") i
  for ((i = 0; i < ${#args[@]}; i++)); do
    [[ "${args[$i]}" == --requests ]] && requests="${args[$((i + 1))]}"
  done
  [[ -n "$requests" ]] || die "drain_backlog: give --requests"
  start_services kafka 1
  local worker
  worker="$(read_pid "$RUN_DIR/worker-1.pid")"
  kill -TERM "$worker"
  while kill -0 "$worker" 2>/dev/null; do sleep 0.2; done
  rm -f -- "$RUN_DIR/worker-1.pid"
  # A log left by an earlier run would satisfy the wait below at once.
  rm -f -- "$RESULTS_DIR/$name.log"
  "$FLASHSALE" --target "127.0.0.1:$GATEWAY_PORT" --progress=true --issuer kafka \
    --pid_files "gateway=$RUN_DIR/gateway.pid,$(server_pid_files)" \
    --watch_idle_timeout 10m --json_out "$RESULTS_DIR/$name.json" "$@" \
    >"$RESULTS_DIR/$name.txt" 2>"$RESULTS_DIR/$name.log" &
  local sale=$!
  until grep -qs "answered $requests (" "$RESULTS_DIR/$name.log"; do
    kill -0 "$sale" 2>/dev/null || die "$name: flashsale ended before the backlog was queued ($RESULTS_DIR/$name.log)"
    sleep 0.5
  done
  WORKERS=1 scripts/services start >/dev/null
  worker="$(read_pid "$RUN_DIR/worker-1.pid")"
  local rc=0
  wait "$sale" || rc=$?
  ((rc <= 1)) || die "$name: flashsale exited $rc, see $RESULTS_DIR/$name.log"
  ((rc == 0)) || warn "$name: INVARIANTS VIOLATED, see $RESULTS_DIR/$name.txt"
  # The drain is the started worker's alone: had another decided events
  # while the backlog was queued, the rate would be the gateway's.
  local drained
  drained="$(worker_sums | cut -d' ' -f1)"
  ((${drained%.*} >= requests)) ||
    die "$name: the worker decided $drained of $requests events; the rest were decided before it started"
  local ticks
  ticks="$(awk '{print $14 + $15}' "/proc/$worker/stat")"
  {
    echo "cpu_seconds $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { print t / hz }')"
    worker_summary
  } >"$RESULTS_DIR/$name.worker"
  scripts/services stop >/dev/null
  log "$name: $(jq -r '"\(.decisions) decisions at \(.decisions_per_second | floor)/s"' "$RESULTS_DIR/$name.json"), $(paste -sd' ' "$RESULTS_DIR/$name.worker")"
}

# pgbench_worker_batches NAME BATCH ISSUED COUPONS SECONDS: the worker's own
# transaction (bench/compare/pgbench-batched.sql: its statements, in its two
# pipelined round trips) with BATCH events of which ISSUED win a copy, over
# COUPONS coupons, 1 client, on the real tables beside the sales' rows.
# Events per second = transactions per second x BATCH, into pgbench-NAME.txt.
pgbench_worker_batches() {
  local name="$1" batch="$2" issued="$3" coupons="$4" seconds="$5" first
  first="$(psql_coupon "INSERT INTO coupons (name, total_quantity, remaining_quantity)
    SELECT 'pgbench worker batches', 1000000000000, 1000000000000
    FROM generate_series(1, $coupons) RETURNING coupon_id" | sort -n | head -1)"
  pgbench "$PG_DSN" -n -M prepared -T "$seconds" -c 1 -f bench/compare/pgbench-batched.sql \
    -D coupon="$first" -D ncoupons="$coupons" -D batch="$batch" -D issued="$issued" \
    >"$RESULTS_DIR/pgbench-$name.txt" 2>&1 || die "pgbench $name failed ($RESULTS_DIR/pgbench-$name.txt)"
  log "pgbench $name: $(grep -E '^tps' "$RESULTS_DIR/pgbench-$name.txt") x $batch events"
}
