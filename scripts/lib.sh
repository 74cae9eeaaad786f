# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# scripts/lib.sh — helpers sourced by the local-stack scripts (install-deps, stack, migrate).
#
# Sourcing it:
#   - finds the repository root and the runtime state folder <repo>/.local/ (gitignored);
#   - sets the port defaults, each overridable from the environment:
#       KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093 PG_PORT=5432 REDIS_PORT=6379 GATEWAY_PORT=50051
#   - reads the stack's layout (one Kafka node or a cluster, PostgreSQL with or without a
#     standby): KAFKA_NODES and PG_STANDBY from the environment, else from the running
#     stack's record ($RUN_DIR/stack.layout, written by scripts/stack start), else 1 / none;
#   - exports the connection settings every client uses (kept when already set):
#       KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT (every node, comma-separated, for a cluster)
#       PG_DSN=postgresql://coupon:coupon@127.0.0.1:$PG_PORT/coupon (with a standby: both
#              hosts and target_session_attrs=read-write, so libpq finds the primary)
#       REDIS_ADDR=127.0.0.1:$REDIS_PORT
#   - names the local stack's secrets and certificates (files, never values):
#       ADMIN_TOKEN_FILE=<repo>/.local/admin-token   (made by ensure_admin_token)
#       TLS_DIR=<repo>/.local/tls                     (made by scripts/tls-certs)
#   - defines log / warn / die, wait_for_port, port and pid-file helpers.
# It changes no shell options of the caller beyond what the caller set, and starts nothing.

if [[ -n "${_COUPON_LIB_SH:-}" ]]; then
  return 0
fi
_COUPON_LIB_SH=1

# ---------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------
_lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(git -C "$_lib_dir" rev-parse --show-toplevel 2>/dev/null || (cd "$_lib_dir/.." && pwd -P))"
unset _lib_dir

# LOCAL_DIR: where the stack keeps its state; another directory (with other
# ports) runs a second stack beside the first.
: "${LOCAL_DIR:=$REPO_ROOT/.local}"
LOCAL_BIN="$LOCAL_DIR/bin"
DATA_DIR="$LOCAL_DIR/data"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"
CONF_DIR="$LOCAL_DIR/conf"
KAFKA_DIST="$LOCAL_DIR/kafka-dist"
KAFKA_LIBS="$KAFKA_DIST/libs"
DEPLOY_LOCAL="$REPO_ROOT/deploy/local"

# ---------------------------------------------------------------------------------------
# Ports (all servers bind 127.0.0.1 only)
# ---------------------------------------------------------------------------------------
: "${KAFKA_PORT:=9092}"
: "${KAFKA_CONTROLLER_PORT:=9093}"
: "${PG_PORT:=5432}"
: "${REDIS_PORT:=6379}"
: "${GATEWAY_PORT:=50051}"
export KAFKA_PORT KAFKA_CONTROLLER_PORT PG_PORT REDIS_PORT GATEWAY_PORT

# The role, password and database the stack creates and PG_DSN points at.
: "${PG_USER:=coupon}"
: "${PG_PASSWORD:=coupon}"
: "${PG_DB:=coupon}"

# ---------------------------------------------------------------------------------------
# Layout: a single node of each server (the default), or
#   KAFKA_NODES=3 (or more): a KRaft cluster, every node broker and controller (a quorum of
#     KAFKA_NODES voters); node i listens on KAFKA_PORT + (i-1)*KAFKA_PORT_STEP, its
#     controller on KAFKA_CONTROLLER_PORT + (i-1)*KAFKA_PORT_STEP; topics get replication
#     factor 3 and min.insync.replicas=2;
#   PG_STANDBY=sync|async: PostgreSQL node 1 on PG_PORT and node 2 on PG_STANDBY_PORT,
#     one primary and one streaming standby (synchronous_standby_names names the standby
#     with sync, is empty with async). Which node is the primary is state, not a choice:
#     PG_PRIMARY_NODE, kept with the data (data/pg-ha/primary; 1 until `scripts/stack
#     promote`), so it outlives a stop.
# A cluster's data lives apart from the single node's (data/kafka-cluster/, data/pg-ha/),
# so switching the layout (stop, start with other variables) keeps both.
# ---------------------------------------------------------------------------------------
STACK_LAYOUT_FILE="$RUN_DIR/stack.layout"
PG_PRIMARY_FILE="$DATA_DIR/pg-ha/primary"
if [[ -r "$STACK_LAYOUT_FILE" ]]; then
  while IFS='=' read -r _key _value; do
    case "$_key" in
      KAFKA_NODES | PG_STANDBY) [[ -n "${!_key:-}" ]] || printf -v "$_key" '%s' "$_value" ;;
    esac
  done <"$STACK_LAYOUT_FILE"
  unset _key _value
fi
# pg_primary_node: the PostgreSQL node that is the primary (of the layout with a standby).
pg_primary_node() {
  local n=""
  [[ -r "$PG_PRIMARY_FILE" ]] && read -r n <"$PG_PRIMARY_FILE"
  [[ "$n" == 2 ]] && echo 2 || echo 1
}
PG_PRIMARY_NODE="$(pg_primary_node)"
: "${KAFKA_NODES:=1}"
: "${KAFKA_PORT_STEP:=10}"
: "${PG_STANDBY:=none}"
: "${PG_STANDBY_PORT:=$((PG_PORT + 1))}"
export KAFKA_NODES KAFKA_PORT_STEP PG_STANDBY PG_STANDBY_PORT

# kafka_cluster: true when the layout is a Kafka cluster rather than one node.
kafka_cluster() { ((KAFKA_NODES > 1)); }
# kafka_node_port I / kafka_node_controller_port I: node I's listener and controller ports.
kafka_node_port() { printf '%s' $((KAFKA_PORT + ($1 - 1) * KAFKA_PORT_STEP)); }
kafka_node_controller_port() { printf '%s' $((KAFKA_CONTROLLER_PORT + ($1 - 1) * KAFKA_PORT_STEP)); }
# kafka_node_suffix I: "" for the single node (its files keep their old names), "-I" in a cluster.
kafka_node_suffix() { if kafka_cluster; then printf -- '-%s' "$1"; fi; }
kafka_node_pidfile() { printf '%s/kafka%s.pid' "$RUN_DIR" "$(kafka_node_suffix "$1")"; }
kafka_node_log() { printf '%s/kafka%s.log' "$LOG_DIR" "$(kafka_node_suffix "$1")"; }
kafka_node_data() {
  if kafka_cluster; then printf '%s/kafka-cluster/node-%s' "$DATA_DIR" "$1"; else printf '%s/kafka' "$DATA_DIR"; fi
}
# kafka_bootstrap: every node's listener, comma-separated.
kafka_bootstrap() {
  local i out=""
  for ((i = 1; i <= KAFKA_NODES; i++)); do out+="${out:+,}127.0.0.1:$(kafka_node_port "$i")"; done
  printf '%s' "$out"
}
# The cgroup (v2) a cluster node runs in, so the chaos suite can cut that node's own
# traffic off (iptables -m cgroup) without touching anyone else's. Empty when the
# machine has no writable cgroup2 hierarchy; the node then runs where its caller does.
kafka_node_cgroup() {
  local root
  root="$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts 2>/dev/null)"
  [[ -n "$root" && -w "$root" ]] || return 0
  printf '%s/coupon-stack-%s/kafka-%s' "$root" "$(printf '%s' "$LOCAL_DIR" | cksum | cut -d' ' -f1)" "$1"
}

pg_ha() { [[ "$PG_STANDBY" != none ]]; }
pg_node_port() { if (($1 == 1)); then printf '%s' "$PG_PORT"; else printf '%s' "$PG_STANDBY_PORT"; fi; }
pg_node_data() {
  if pg_ha; then printf '%s/pg-ha/node-%s' "$DATA_DIR" "$1"; else printf '%s/pg' "$DATA_DIR"; fi
}
pg_node_log() { if pg_ha; then printf '%s/postgres-%s.log' "$LOG_DIR" "$1"; else printf '%s/postgres.log' "$LOG_DIR"; fi; }
# pg_nodes: the PostgreSQL nodes of the layout, primary first.
pg_nodes() {
  if pg_ha; then printf '%s %s' "$PG_PRIMARY_NODE" $((3 - PG_PRIMARY_NODE)); else printf '1'; fi
}
# The DSN of the layout: with a standby, both hosts; libpq tries them in order and keeps
# the one that accepts writes, so clients follow a failover without a restart.
stack_pg_dsn() {
  if pg_ha; then
    printf 'postgresql://%s:%s@127.0.0.1:%s,127.0.0.1:%s/%s?target_session_attrs=read-write' \
      "$PG_USER" "$PG_PASSWORD" "$PG_PORT" "$PG_STANDBY_PORT" "$PG_DB"
  else
    printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$PG_USER" "$PG_PASSWORD" "$PG_PORT" "$PG_DB"
  fi
}

# ---------------------------------------------------------------------------------------
# Connection settings for clients (services, tests, tools). Not overwritten when set.
# ---------------------------------------------------------------------------------------
: "${KAFKA_BROKERS:=$(kafka_bootstrap)}"
: "${PG_DSN:=$(stack_pg_dsn)}"
: "${REDIS_ADDR:=127.0.0.1:$REDIS_PORT}"
export KAFKA_BROKERS PG_DSN REDIS_ADDR

# The admin bearer token the local gateway accepts for CreateCoupon, and the
# certificates of TLS=1 / TLS=mutual. Clients read the file:
#   grpcurl -H "authorization: Bearer $(cat .local/admin-token)" ...
# and flashsale reads ADMIN_TOKEN_FILE itself.
: "${ADMIN_TOKEN_FILE:=$LOCAL_DIR/admin-token}"
: "${TLS_DIR:=$LOCAL_DIR/tls}"
export ADMIN_TOKEN_FILE TLS_DIR

# Tools installed by install-deps (grpcurl) live in .local/bin.
case ":$PATH:" in
  *":$LOCAL_BIN:"*) ;;
  *) export PATH="$LOCAL_BIN:$PATH" ;;
esac

# ---------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------
_script_name="$(basename "${0:-lib.sh}")"

log() { printf '[%s %s] %s\n' "$_script_name" "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '[%s %s] WARNING: %s\n' "$_script_name" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[%s %s] ERROR: %s\n' "$_script_name" "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}

# need_cmd CMD [HINT]: die unless CMD is on PATH.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 ||
    die "'$1' not found on PATH${2:+ ($2)}; run scripts/install-deps first"
}

# show_log_tail FILE [LINES]: print the last lines of a log to stderr, for failure messages.
show_log_tail() {
  local file="$1" lines="${2:-40}"
  if [[ -r "$file" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" >&2 || true
    printf -- '----- end of %s -----\n' "$file" >&2
  else
    printf -- '(no log at %s)\n' "$file" >&2
  fi
}

# ---------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# http_status HOST PORT PATH: the status code an HTTP GET of PATH answers,
# or nothing when nothing does (bash's /dev/tcp: no curl needed).
http_status() {
  (
    exec 3<>"/dev/tcp/$1/$2" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
    local code
    read -r -t 2 _ code _ <&3 && printf '%s' "$code"
  ) 2>/dev/null || true
}

# port_owner PORT: "pid=N cmd=NAME" of the process listening on PORT, if ss can tell.
port_owner() {
  local line
  line="$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n1)" || true
  if [[ "$line" =~ users:\(\(\"([^\"]*)\",pid=([0-9]+) ]]; then
    printf 'pid=%s cmd=%s' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
  fi
}

# port_in_use PORT: true when anything listens on PORT on any local address.
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    port_open 127.0.0.1 "$1"
  fi
}

# ensure_port_free PORT ENV_VAR WHAT: die with a clear message when PORT is taken by a
# process that is not ours (callers check "is it ours" first).
ensure_port_free() {
  local port="$1" var="$2" what="$3" owner
  if port_in_use "$port"; then
    owner="$(port_owner "$port")"
    die "port $port, wanted by $what, is already in use by another process${owner:+ ($owner)}." \
      "Stop that process, or set $var to a free port (e.g. $var=$((port < 55536 ? port + 10000 : port - 10000)) scripts/$_script_name start)."
  fi
}

# wait_for_port HOST PORT TIMEOUT_S WHAT [LOGFILE] [PID]: wait until HOST:PORT accepts
# connections. On timeout, or when PID (if given) dies first, fail with the log's tail.
wait_for_port() {
  local host="$1" port="$2" timeout_s="$3" what="$4" logfile="${5:-}" pid="${6:-}"
  local deadline=$((SECONDS + timeout_s))
  while ! port_open "$host" "$port"; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      [[ -n "$logfile" ]] && show_log_tail "$logfile"
      die "$what exited before it opened $host:$port (see ${logfile:-its log})"
    fi
    if ((SECONDS >= deadline)); then
      [[ -n "$logfile" ]] && show_log_tail "$logfile"
      die "$what did not open $host:$port within ${timeout_s}s (see ${logfile:-its log})"
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------
# Pid files
# ---------------------------------------------------------------------------------------

# read_pid FILE: print the pid stored in FILE (nothing if missing or malformed).
read_pid() {
  local pid=""
  if [[ -r "$1" ]]; then read -r pid <"$1" 2>/dev/null || true; fi
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s' "$pid"
  return 0
}

# pid_alive PID [PATTERN]: true when PID runs and, if given, its command line contains
# PATTERN (guards against a recycled pid).
pid_alive() {
  local pid="$1" pattern="${2:-}"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # An exited daemon whose parent (init) has not reaped it yet is a zombie: not alive.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]] || return 1
  [[ -z "$pattern" ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# pidfile_alive FILE [PATTERN]: print the pid and succeed when FILE names a live process;
# removes a stale FILE.
pidfile_alive() {
  local file="$1" pattern="${2:-}" pid
  pid="$(read_pid "$file")"
  if pid_alive "$pid" "$pattern"; then
    printf '%s' "$pid"
    return 0
  fi
  [[ -e "$file" ]] && rm -f -- "$file"
  return 1
}

# write_pid FILE PID
write_pid() {
  printf '%s\n' "$2" >"$1.tmp" && mv -f -- "$1.tmp" "$1"
}

# ---------------------------------------------------------------------------------------
# Kafka's own command-line tools (scripts/stack, the chaos suite)
# ---------------------------------------------------------------------------------------
# kafka_tool CLASS ARGS...: a short-lived JVM for one of Kafka's tools (TopicCommand,
# MetadataQuorumCommand, ...): small heap, fast start, warnings only.
kafka_tool_cmd() {
  printf '%s\0' java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    "-Dlog4j.configuration=file:$DEPLOY_LOCAL/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*"
}
kafka_tool() {
  local -a cmd
  mapfile -d '' cmd < <(kafka_tool_cmd)
  "${cmd[@]}" "$@"
}
# kafka_tool_timeout SECONDS CLASS ARGS...: same, killed after SECONDS.
kafka_tool_timeout() {
  local secs="$1"
  local -a cmd
  shift
  mapfile -d '' cmd < <(kafka_tool_cmd)
  timeout --kill-after=5 "$secs" "${cmd[@]}" "$@"
}

# ---------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------

# as_root CMD...: run CMD as root (directly when we are root, else through sudo).
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@" || die "'$*' needs root and 'sudo -n' failed; run it as root"
  else
    die "'$*' needs root; run as root"
  fi
}

# redact_dsn DSN: DSN with the password replaced by ***, for messages: the
# user info of a URI, and password= / sslpassword= in a URI query or a
# key=value string (common/service/redact.cc does the same for the binaries).
redact_dsn() {
  sed -E -e 's#^([a-z]+://[^:/@?]*):[^/?]*@#\1:***@#' \
    -e "s#(^|[?&[:space:]])((ssl)?password[[:space:]]*=[[:space:]]*)('([^'\\\\]|\\\\.)*'|[^&[:space:]]*)#\\1\\2***#gI" <<<"$1"
}

# ensure_admin_token: make ADMIN_TOKEN_FILE (a random token, owner-only) if
# it is missing or empty.
ensure_admin_token() {
  [[ -s "$ADMIN_TOKEN_FILE" ]] && return 0
  mkdir -p "$(dirname "$ADMIN_TOKEN_FILE")"
  (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$ADMIN_TOKEN_FILE.tmp" &&
    echo >>"$ADMIN_TOKEN_FILE.tmp" && mv -f -- "$ADMIN_TOKEN_FILE.tmp" "$ADMIN_TOKEN_FILE")
  log "made an admin token in $ADMIN_TOKEN_FILE"
}

ensure_local_dirs() {
  mkdir -p "$LOCAL_BIN" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR" "$CONF_DIR"
}

# render_template SRC DEST VAR...: copy SRC to DEST replacing each @VAR@ with $VAR.
render_template() {
  local src="$1" dest="$2" var value content
  shift 2
  [[ -r "$src" ]] || die "missing template $src"
  content="$(<"$src")"
  for var in "$@"; do
    value="${!var}"
    content="${content//@${var}@/$value}"
  done
  printf '%s\n' "$content" >"$dest.tmp"
  mv -f -- "$dest.tmp" "$dest"
}
