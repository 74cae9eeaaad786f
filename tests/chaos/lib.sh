# shellcheck shell=bash disable=SC2034  # variables here are used by tests/chaos/run
# tests/chaos/lib.sh — helpers of the fault-injection suite (tests/chaos/run):
# the suite's own services, the faults, the samplers and the checks.
#
# Everything a scenario makes lives in $SCN_DIR (.local/chaos/<suite>/<scenario>/):
#   gateway-N.log worker-N.log outbox.log   the services' logs
#   *.pid                                  pids of the services this suite started
#   flashsale.json flashsale.log           the load generator's report and log
#   lag.tsv      unix_ms, then p:committed:high per partition of the request topic
#   rss.tsv      unix_ms name rss_kb        the gateways' resident memory
#   events.tsv   i fault fault_ms repair_ms ready_ms flow_ms note   one line per injection
#   result.json  the scenario's figures and verdict
# The suite only ever signals processes it started itself (by pid) and the
# stack's three servers (by the pid files of scripts/stack).

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/lib.sh"

BUILD_DIR="${BUILD_DIR:-$REPO_ROOT/build}"
GATEWAY_BIN="$BUILD_DIR/gateway/coupon-gateway"
WORKER_BIN="$BUILD_DIR/issuer-worker/coupon-issuer-worker"
OUTBOX_BIN="$BUILD_DIR/redis-issuer/outbox/coupon-outbox-scheduler"
FLASHSALE_BIN="$BUILD_DIR/bench/flashsale"
PROBE_BIN="$BUILD_DIR/tests/chaos/chaos-probe"
STACK="$REPO_ROOT/scripts/stack"

# The suite's own topics and consumer group: another gateway or worker on the
# stack (scripts/services, a colleague's test) must not take a share of the
# partitions this suite kills and pauses, nor its results. Same partition counts
# as the service's topics.
: "${CHAOS_TOPIC_PREFIX:=chaos.}"
REQUEST_TOPIC="${CHAOS_TOPIC_PREFIX}coupon-issue-request"
RESULT_TOPIC="${CHAOS_TOPIC_PREFIX}coupon-issue-result"
DLQ_TOPIC="${CHAOS_TOPIC_PREFIX}coupon-issue-request.dlq"
: "${CHAOS_GROUP:=chaos-coupon-issuer}"
# Below Linux's ephemeral range (32768-60999): a port in it can be taken by
# an outgoing connection's local end just before the gateway binds it (seen:
# "gateway-2 exited before it served on port 50172", address in use).
: "${CHAOS_GATEWAY_PORTS:=30171,30172}"
IFS=, read -r -a GATEWAY_PORTS <<<"$CHAOS_GATEWAY_PORTS"

PG_BIN="/usr/lib/postgresql/15/bin"

now_ms() { date +%s%3N; }

# draw LO HI: a seeded uniform draw in [LO, HI] into DRAW. bash's RANDOM, seeded
# by the driver; never call it in a $(...) subshell, whose draws the parent
# would draw again.
draw() {
  DRAW=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
}

sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN{printf "%.3f", m/1000}')"; }

# has_flag BIN FLAG: the binary in build/ knows --FLAG (colleagues add flags while
# this suite runs: --metrics_port, --admin_auth, ...).
has_flag() {
  local help
  help="$("$1" --helpfull 2>&1)" || true
  grep -q -- "--$2 " <<<"$help"
}

# ---------------------------------------------------------------------------
# The suite's services (started with their own logs and pid files in $SCN_DIR)

# svc_start NAME BIN ARGS...: start in the background, append to NAME.log.
svc_start() {
  local name="$1" bin="$2"
  shift 2
  printf '\n===== %s start: %s %s\n' "$(date -Is)" "${bin##*/}" "$*" >>"$SCN_DIR/$name.log"
  # GLOG_v=0: the per-batch lines of the worker would cost CPU we do not have.
  GLOG_v=0 setsid "$bin" "$@" >>"$SCN_DIR/$name.log" 2>&1 </dev/null &
  echo "$!" >"$SCN_DIR/$name.pid"
}

svc_pid() { read_pid "$SCN_DIR/$1.pid"; }

# svc_signal NAME SIG: signal one of our services, if it runs.
svc_signal() {
  local pid
  pid="$(svc_pid "$1")"
  [[ -n "$pid" ]] && kill "-$2" "$pid" 2>/dev/null
}

# svc_stop NAME: SIGCONT (a paused one would never exit), SIGTERM, SIGKILL after 30 s.
svc_stop() {
  local pid i
  pid="$(svc_pid "$1")"
  [[ -n "$pid" ]] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$1 (pid $pid) ignored SIGTERM for 30 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  rm -f -- "$SCN_DIR/$1.pid"
}

# grpc_serving PORT: the gateway there answers SERVING on the health service.
grpc_serving() {
  if command -v grpcurl >/dev/null 2>&1; then
    grpcurl -plaintext -max-time 1 "127.0.0.1:$1" grpc.health.v1.Health/Check 2>/dev/null |
      grep -q '"SERVING"'
  else
    port_open 127.0.0.1 "$1"
  fi
}

# wait_serving NAME PORT TIMEOUT_S: wait for SERVING; fail if the gateway died.
wait_serving() {
  local name="$1" port="$2" deadline=$((SECONDS + $3)) pid
  until grpc_serving "$port"; do
    pid="$(svc_pid "$name")"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
      show_log_tail "$SCN_DIR/$name.log" 20
      die "$name exited before it served on port $port"
    fi
    ((SECONDS < deadline)) || {
      show_log_tail "$SCN_DIR/$name.log" 20
      die "$name did not serve on port $port within $3 s"
    }
    sleep 0.1
  done
}

# Flags of the binaries as built now, asked once per suite run.
detect_flags() {
  GATEWAY_EXTRA=() WORKER_EXTRA=() OUTBOX_EXTRA=()
  # CreateCoupon is admin-only when the gateway has --admin_auth; flashsale sends
  # no token, and these gateways listen on loopback only.
  if has_flag "$GATEWAY_BIN" admin_auth; then GATEWAY_EXTRA+=(--admin_auth=none); fi
  # flashsale's users resend their ids while a fault lasts: a per-user limit would
  # turn those into RESOURCE_EXHAUSTED and hide what the fault does.
  if has_flag "$GATEWAY_BIN" user_rate_limit; then GATEWAY_EXTRA+=(--user_rate_limit=0); fi
  # Four processes of the same kind on one host: no metrics endpoint, no port clash.
  if has_flag "$GATEWAY_BIN" metrics_port; then GATEWAY_EXTRA+=(--metrics_port=0); fi
  if has_flag "$WORKER_BIN" metrics_port; then WORKER_EXTRA+=(--metrics_port=0); fi
  if has_flag "$OUTBOX_BIN" metrics_port; then OUTBOX_EXTRA+=(--metrics_port=0); fi
  return 0
}

# gateway_start N ISSUER: gateway N on GATEWAY_PORTS[N-1].
gateway_start() {
  local n="$1" issuer="$2"
  svc_start "gateway-$n" "$GATEWAY_BIN" --listen="127.0.0.1:${GATEWAY_PORTS[n - 1]}" \
    --issuer="$issuer" --kafka_brokers="$KAFKA_BROKERS" --pg_dsn="$PG_DSN" \
    --redis_addr="$REDIS_ADDR" --request_topic="$REQUEST_TOPIC" --result_topic="$RESULT_TOPIC" \
    "${GATEWAY_EXTRA[@]}" "${GATEWAY_SCENARIO_ARGS[@]+"${GATEWAY_SCENARIO_ARGS[@]}"}"
}

# dsn_with DSN KEY VALUE: DSN with one more connection parameter, in a URI
# (postgresql://...?k=v) or in a key=value string.
dsn_with() {
  local dsn="$1" key="$2" value="$3"
  if [[ "$dsn" == postgres://* || "$dsn" == postgresql://* ]]; then
    if [[ "$dsn" == *\?* ]]; then printf '%s&%s=%s' "$dsn" "$key" "$value"; else printf '%s?%s=%s' "$dsn" "$key" "$value"; fi
  else
    printf "%s %s='%s'" "$dsn" "$key" "$value"
  fi
}

# Worker N's PostgreSQL session is named chaos-worker-N (application_name), so
# pg_stat_activity tells which worker a session belongs to.
worker_app_name() { printf 'chaos-worker-%s' "$1"; }

worker_start() {
  svc_start "worker-$1" "$WORKER_BIN" --kafka_brokers="$KAFKA_BROKERS" \
    --pg_dsn="$(dsn_with "$PG_DSN" application_name "$(worker_app_name "$1")")" \
    --group_id="$CHAOS_GROUP" --request_topic="$REQUEST_TOPIC" --result_topic="$RESULT_TOPIC" \
    --dead_letter_topic="$DLQ_TOPIC" --session_timeout_ms="$SESSION_TIMEOUT_MS" "${WORKER_EXTRA[@]}" \
    "${WORKER_SCENARIO_ARGS[@]+"${WORKER_SCENARIO_ARGS[@]}"}"
}

outbox_start() {
  # Passes every second and quick retries, so an over-issued copy is FAILED
  # (4 attempts) within seconds of the sale instead of minutes, and a copy
  # reserved for a caller who gave up is written 2 s after, not 30.
  svc_start outbox "$OUTBOX_BIN" --pg_dsn="$PG_DSN" --outbox_interval=1s \
    --outbox_retry_interval=1s --reconcile_after=2s "${OUTBOX_EXTRA[@]}"
}

# services_up ISSUER: two gateways and, behind them, two workers (kafka) or the
# outbox scheduler (redis).
services_up() {
  local issuer="$1" n
  if [[ "$issuer" == kafka ]]; then
    worker_start 1
    worker_start 2
  else
    outbox_start
  fi
  for n in 1 2; do
    ensure_port_free "${GATEWAY_PORTS[n - 1]}" CHAOS_GATEWAY_PORTS "chaos gateway $n"
    gateway_start "$n" "$issuer"
  done
  for n in 1 2; do wait_serving "gateway-$n" "${GATEWAY_PORTS[n - 1]}" 120; done
}

services_down() {
  local f
  for f in "$SCN_DIR"/*.pid; do
    [[ -e "$f" ]] || continue
    svc_stop "$(basename "$f" .pid)"
  done
}

# ---------------------------------------------------------------------------
# The stack's servers (scripts/lib.sh names each node's ports and files)

# layout_refresh: which PostgreSQL node is the primary now (`scripts/stack
# promote` changes it, in another process).
layout_refresh() { PG_PRIMARY_NODE="$(pg_primary_node)"; }

# kafka_pid [N]: the pid of Kafka node N (default 1).
kafka_pid() { pidfile_alive "$(kafka_node_pidfile "${1:-1}")" kafka.Kafka; }
# kafka_pids: the pids of every node that runs.
kafka_pids() {
  local n pid
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    if pid="$(kafka_pid "$n")"; then printf '%s\n' "$pid"; fi
  done
}
redis_pid() { pidfile_alive "$RUN_DIR/redis.pid" redis-server; }
pg_primary_data() {
  layout_refresh
  pg_node_data "$PG_PRIMARY_NODE"
}
pg_primary_port() {
  layout_refresh
  pg_node_port "$PG_PRIMARY_NODE"
}
pg_pid() {
  local pid="" data
  data="$(pg_primary_data)"
  [[ -r "$data/postmaster.pid" ]] && read -r pid <"$data/postmaster.pid"
  pid_alive "$pid" postgres && printf '%s' "$pid"
}

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
pg_ready() { pg_isready -q -h 127.0.0.1 -p "$(pg_primary_port)"; }
# kafka_ready: every node accepts connections.
kafka_ready() {
  local n
  for ((n = 1; n <= KAFKA_NODES; n++)); do port_open 127.0.0.1 "$(kafka_node_port "$n")" || return 1; done
}

# stack_start_bg [ENV=VALUE...]: scripts/stack start in the background (it starts
# what is down); its pid in STACK_START_PID.
stack_start_bg() {
  env "$@" "$STACK" start >>"$SCN_DIR/stack.log" 2>&1 &
  STACK_START_PID=$!
}

stack_start_wait() {
  wait "$STACK_START_PID" || {
    show_log_tail "$SCN_DIR/stack.log" 30
    die "scripts/stack start failed (see $SCN_DIR/stack.log)"
  }
}

# wait_until TIMEOUT_S CMD...: poll CMD every 50 ms; prints the time it first held.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
  now_ms
}

pg_stop_immediate() {
  local -a cmd=("$PG_BIN/pg_ctl" -D "$(pg_primary_data)" -m immediate -w -t 30 stop)
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "${cmd[@]}"; else "${cmd[@]}"; fi
}

# pg_super_sql NODE QUERY: one value, as the superuser on PostgreSQL node NODE
# (its Unix socket; pg_stat_replication's details are the superuser's).
pg_super_sql() {
  local -a cmd=(psql -X -At -h "$RUN_DIR/pg" -p "$(pg_node_port "$1")" -U postgres -d postgres -c "$2")
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "${cmd[@]}"; else "${cmd[@]}"; fi
}

# pg_standby_streaming: the primary has a standby streaming from it (sync or
# async, as the layout asks).
pg_standby_streaming() {
  layout_refresh
  [[ "$(pg_super_sql "$PG_PRIMARY_NODE" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null)" == 1 ]]
}

# pg_kill_primary: SIGKILL the primary's postmaster and every process it forked,
# at once: the machine it runs on is gone (nothing flushed or sent on the way
# out). Prints the postmaster's pid.
pg_kill_primary() {
  local pid
  pid="$(pg_pid)" || die "the PostgreSQL primary is not running"
  # shellcheck disable=SC2046  # one pid a word
  kill -KILL "$pid" $(ps -o pid= --ppid "$pid") 2>/dev/null || true
  printf '%s' "$pid"
}

# ---------------------------------------------------------------------------
# The Kafka cluster, through Kafka's own tools

# partition_leaders: "partition leader" of each partition of the request topic.
partition_leaders() {
  kafka_tool_timeout 30 org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
    --describe --topic "$REQUEST_TOPIC" |
    awk '{ p = ""; l = ""; for (i = 1; i < NF; i++) { if ($i == "Partition:") p = $(i + 1); if ($i == "Leader:") l = $(i + 1) }
           if (p != "") print p, l }'
}

# active_controller: the node id of the quorum's leader.
active_controller() {
  kafka_tool_timeout 30 org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$KAFKA_BROKERS" \
    describe --status | awk -F': *' '$1 == "LeaderId" {print $2}'
}

# busiest_partition LAG_TSV: the request topic's partition whose log grew most
# over the last ~3 s of samples.
busiest_partition() {
  awk -F'\t' '$2 != "down" && NF > 1 { n++; t[n] = $1; l[n] = $0 }
    END {
      if (!n) exit
      e = 1; for (k = n; k >= 1; k--) if (t[k] <= t[n] - 3000) { e = k; break }
      m = split(l[n], a, "\t"); split(l[e], b, "\t")
      for (i = 2; i <= m; i++) { split(a[i], x, ":"); split(b[i], y, ":"); d = x[3] - y[3]; if (best == "" || d > bd) { best = x[1]; bd = d } }
      print best
    }' "$1"
}

# group_partitions_of PID: the request topic's partitions the chaos group has
# given the worker PID (its client id ends in its pid), comma-separated.
group_partitions_of() {
  kafka_tool_timeout 30 org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "$KAFKA_BROKERS" --describe --group "$CHAOS_GROUP" --members --verbose 2>/dev/null |
    awk -v pid="$1" -v t="$REQUEST_TOPIC" '$4 ~ ("-" pid "$") {
        # ASSIGNMENT is "topic(0,1,...)", or "(0,1,...)" when the group reads one topic.
        for (i = 6; i <= NF; i++) {
          s = ""
          if (index($i, t "(") > 0) s = substr($i, index($i, t "(") + length(t) + 1)
          else if (substr($i, 1, 1) == "(") s = substr($i, 2)
          if (s != "") { sub(/\).*/, "", s); print s; exit }
        } }'
}

# Cutting node N off: every packet its own sockets send (it runs in a cgroup of
# its own, see scripts/stack) and every packet sent to its two ports, on the
# loopback only. One chain of this stack's, hooked into OUTPUT while it lasts.
ISOLATION_CHAIN="COUPON-CHAOS-$(printf '%s' "$LOCAL_DIR" | cksum | cut -d' ' -f1)"
ISOLATION_CHAIN="${ISOLATION_CHAIN:0:28}"

# isolation_possible: why a node cannot be cut off here, or nothing.
isolation_possible() {
  [[ $EUID -eq 0 ]] || { echo "needs root (iptables)"; return 0; }
  command -v iptables >/dev/null 2>&1 || { echo "iptables is not installed (scripts/install-deps)"; return 0; }
  [[ -s "$RUN_DIR/kafka-1.cgroup" ]] || echo "the Kafka nodes run in no cgroup of their own (no writable cgroup2)"
  return 0
}

isolate_node() {
  local n="$1" cg root rel
  cg="$(cat -- "$RUN_DIR/kafka-$n.cgroup")"
  root="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)"
  rel="${cg#"$root"/}"
  iptables -N "$ISOLATION_CHAIN" 2>/dev/null || iptables -F "$ISOLATION_CHAIN"
  iptables -A "$ISOLATION_CHAIN" -o lo -s 127.0.0.0/8 -d 127.0.0.0/8 -m cgroup --path "$rel" -j DROP
  iptables -A "$ISOLATION_CHAIN" -o lo -s 127.0.0.0/8 -d 127.0.0.0/8 -p tcp -m multiport \
    --dports "$(kafka_node_port "$n"),$(kafka_node_controller_port "$n")" -j DROP
  iptables -C OUTPUT -j "$ISOLATION_CHAIN" 2>/dev/null || iptables -I OUTPUT 1 -j "$ISOLATION_CHAIN"
}

# heal_isolation: remove the chain, if there is one (also on the suite's exit).
heal_isolation() {
  command -v iptables >/dev/null 2>&1 || return 0
  iptables -n -L "$ISOLATION_CHAIN" >/dev/null 2>&1 || return 0
  while iptables -D OUTPUT -j "$ISOLATION_CHAIN" 2>/dev/null; do :; done
  iptables -F "$ISOLATION_CHAIN"
  iptables -X "$ISOLATION_CHAIN"
}

# The persistence the running Redis was started with (aof or none).
redis_persistence_now() {
  if grep -qx 'appendonly yes' "$CONF_DIR/redis.conf" 2>/dev/null; then echo aof; else echo none; fi
}

# redis_restart_with MODE: stop Redis cleanly and start it again with MODE.
redis_restart_with() {
  local pid
  if pid="$(redis_pid)"; then
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 300; i++)); do pid_alive "$pid" || break; sleep 0.1; done
  fi
  rm -f -- "$RUN_DIR/redis.pid" "$RUN_DIR/redis.ports"
  REDIS_PERSISTENCE="$1" "$STACK" start >>"${SCN_DIR:-$CHAOS_DIR}/stack.log" 2>&1 ||
    die "could not restart Redis with REDIS_PERSISTENCE=$1"
}

# Redis' script calls since it started (the Redis issuer's decisions).
redis_script_calls() {
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info commandstats 2>/dev/null |
    awk -F'[:=,]' '/^cmdstat_(evalsha|eval):/ {n += $3} END {print n + 0}'
}

# ---------------------------------------------------------------------------
# Samplers (background; stopped by samplers_stop)

samplers_start() {
  SAMPLER_PIDS=()
  if [[ "$ISSUER" == kafka ]]; then
    "$PROBE_BIN" lag --brokers="$KAFKA_BROKERS" --group="$CHAOS_GROUP" --topic="$REQUEST_TOPIC" \
      --interval=250ms >"$SCN_DIR/lag.tsv" 2>>"$SCN_DIR/probe.log" &
    SAMPLER_PIDS+=("$!")
  fi
  (
    while :; do
      t="$(now_ms)"
      for n in 1 2; do
        pid="$(read_pid "$SCN_DIR/gateway-$n.pid")"
        kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)"
        [[ -n "$kb" ]] && printf '%s\tgateway-%s\t%s\n' "$t" "$n" "$kb"
      done
      sleep 0.5
    done
  ) >"$SCN_DIR/rss.tsv" 2>/dev/null &
  SAMPLER_PIDS+=("$!")
}

samplers_stop() {
  local pid
  for pid in "${SAMPLER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SAMPLER_PIDS=()
}

# ---------------------------------------------------------------------------
# Analysis

# stall_episodes LAG_TSV: one line per time a partition with events waiting made
# no progress (its committed offset did not move) for 1 s or more:
#   partition  start_ms  end_ms   (end_ms -1: it had not moved by the last sample).
# Samples taken while the broker was down carry no information and are skipped.
stall_episodes() {
  awk -F'\t' '
    $2 == "down" || NF < 2 { next }
    {
      t = $1; last_t = t
      for (i = 2; i <= NF; i++) {
        split($i, f, ":"); p = f[1]; c = f[2] + 0; h = f[3] + 0
        if (!(p in prev)) { prev[p] = c; since[p] = t; lag[p] = h - c; continue }
        if (c > prev[p]) {
          if (t - since[p] >= 1000) print p "\t" since[p] "\t" t
          since[p] = t
        } else if (c >= h) {
          since[p] = t  # idle, nothing to do: not a stall
        }
        prev[p] = c; lag[p] = h - c
      }
    }
    END { for (p in prev) if (lag[p] > 0 && last_t - since[p] >= 1000) print p "\t" since[p] "\t-1" }' "$1"
}

# partitions_stuck LAG_TSV: partitions whose last sample still shows a lag.
partitions_stuck() {
  awk -F'\t' '$2 != "down" && NF > 1 { line = $0 } END {
    n = split(line, f, "\t"); out = ""
    for (i = 2; i <= n; i++) { split(f[i], g, ":"); if (g[2] + 0 < g[3] + 0) out = out " " g[1] "(" g[3] - g[2] ")" }
    print out }' "$1"
}

# flow_after LAG_TSV FAULT_MS REPAIR_MS: when every partition that stalled across
# the fault was moving again (ms), or empty when none stalled.
flow_after() {
  stall_episodes "$1" | awk -F'\t' -v f="$2" -v r="$3" '
    $3 == -1 && $2 <= r + 2000 { stuck = 1 }
    $3 >= f && $2 <= r + 2000 { if ($3 > m) m = $3 }
    END { if (stuck) print "stuck"; else if (m) print m }'
}

# sql QUERY: one value (psql -At).
sql() { psql "$PG_DSN" -X -At -v ON_ERROR_STOP=1 -c "$1"; }

# coupon_ids_of LOG: the coupons flashsale made, as a SQL array literal.
coupon_ids_of() {
  # Right after its start flashsale may not have opened its log yet.
  [[ -e "$1" ]] || return 0
  sed -nE 's/.*run [^:]+: coupons ([0-9,]+),.*/\1/p' "$1" | head -n1
}

# db_checks IDS ISSUER: the suite's own checks, beyond flashsale's, as JSON.
db_checks() {
  local ids="{$1}" issuer="$2"
  psql "$PG_DSN" -X -At -v ON_ERROR_STOP=1 <<SQL
WITH c AS (
  SELECT c.coupon_id, c.total_quantity AS total, c.remaining_quantity AS remaining,
         count(u.user_coupon_id) AS issued, count(DISTINCT u.user_id) AS users
  FROM coupons c LEFT JOIN user_coupons u USING (coupon_id)
  WHERE c.coupon_id = ANY('$ids'::bigint[])
  GROUP BY 1, 2, 3),
o AS (
  SELECT coupon_id, count(*) FILTER (WHERE state = 'FAILED') AS failed,
         count(*) FILTER (WHERE state = 'PENDING') AS pending
  FROM coupon_outbox WHERE coupon_id = ANY('$ids'::bigint[]) GROUP BY 1)
SELECT json_build_object(
  'coupons', count(*),
  'stock', sum(total),
  'issued', sum(issued),
  'duplicate_rows', sum(issued - users),
  'over_issue', sum(greatest(issued - total, 0)),
  'outbox_failed', coalesce(sum(o.failed), 0),
  'outbox_pending', coalesce(sum(o.pending), 0),
  -- Kafka: remaining = total - issued. Redis: the copies the outbox FAILED to
  -- take are still counted as left (docs/operations.md), nothing else.
  'counter_mismatch', count(*) FILTER (WHERE remaining <> total - issued + CASE WHEN '$issuer' = 'redis' THEN coalesce(o.failed, 0) ELSE 0 END),
  'rows_without_result', (SELECT count(*) FROM user_coupons u LEFT JOIN issue_results r USING (request_id)
      WHERE u.coupon_id = ANY('$ids'::bigint[])
        AND (r.request_id IS NULL OR r.outcome <> 'ISSUED' OR r.user_coupon_id <> u.user_coupon_id)),
  'issued_results_without_row', (SELECT count(*) FROM issue_results r LEFT JOIN user_coupons u USING (request_id)
      WHERE r.coupon_id = ANY('$ids'::bigint[]) AND r.outcome = 'ISSUED' AND u.request_id IS NULL))
FROM c LEFT JOIN o USING (coupon_id);
SQL
}

# redis_view IDS: Redis' own count of copies (the queues' sizes), summed.
redis_view() {
  local id
  for id in ${1//,/ }; do printf 'ZCARD coupon:queue:%s\n' "$id"; done |
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" 2>/dev/null | awk '{n += $1} END {print n + 0}'
}

# redis_reserved_without_row IDS: per coupon max(0, Redis queue size - PostgreSQL rows):
# copies Redis gave away that no user holds (lost copies).
redis_reserved_without_row() {
  local id q rows total=0
  for id in ${1//,/ }; do
    q="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" zcard "coupon:queue:$id" 2>/dev/null)"
    rows="$(sql "SELECT count(*) FROM user_coupons WHERE coupon_id = $id")"
    ((q > rows)) && total=$((total + q - rows))
  done
  echo "$total"
}
