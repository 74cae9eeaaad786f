#!/usr/bin/env bash
# bench/rebalance-pause.sh — how long a worker joining or leaving the group
# stops the partitions, per assignment kind (the workers'
# --partition_assignment), in one sitting. Per round and kind: one gateway and
# one worker; flashsale's spread workload at a steady rate keeps every
# partition busy; a second worker joins at +10 s and leaves (SIGTERM) at
# +25 s. The workers' own logs say when each partition was revoked and
# assigned; a partition is stopped from its revoke until it is assigned
# again, to anyone.
#
# Usage: bench/rebalance-pause.sh [--rounds=N] [KIND ...]
#   KIND       a --partition_assignment value (default: range cooperative-sticky)
#   --rounds   turns per kind, alternating (default 2)
# Needs the local stack (scripts/stack start) and a build (scripts/build).
# Stops and starts the services of this stack's LOCAL_DIR and leaves them
# stopped. Writes bench/results/rebalance-pause/pause.md (which
# docs/benchmarks-other-sittings.md includes) and the raw logs beside it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../scripts/lib.sh"

ROUNDS=2
KINDS=()
for arg in "$@"; do
  case "$arg" in
    --rounds=*) ROUNDS="${arg#*=}" ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    -*) die "unknown option '$arg' (see --help)" ;;
    *) KINDS+=("$arg") ;;
  esac
done
((${#KINDS[@]} > 0)) || KINDS=(range cooperative-sticky)
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
FLASHSALE="${FLASHSALE:-$REPO_ROOT/build/bench/flashsale}"
[[ -x "$FLASHSALE" ]] || die "$FLASHSALE is missing: run scripts/build first"

OUT="$REPO_ROOT/bench/results/rebalance-pause"
rm -rf -- "$OUT"
mkdir -p "$OUT"
uptime_before="$(uptime)"
log "uptime before: $uptime_before"
"$REPO_ROOT/scripts/services" stop >/dev/null 2>&1 || true

# glog's clock, to the microsecond, as the logs print it.
now_stamp() { date -u '+%Y%m%d %H:%M:%S.%6N'; }

for ((round = 1; round <= ROUNDS; round++)); do
  for kind in "${KINDS[@]}"; do
    name="$kind-$round"
    rm -f -- "$LOG_DIR"/worker-1.log "$LOG_DIR"/worker-2.log
    export PARTITION_ASSIGNMENT="$kind"
    WORKERS=1 "$REPO_ROOT/scripts/services" start >/dev/null
    sleep 3  # worker-1 owns every partition
    "$FLASHSALE" --workload spread --rate 1000 --requests 40000 --progress=false \
      --target "127.0.0.1:$GATEWAY_PORT" --admin_token_file "$ADMIN_TOKEN_FILE" \
      >"$OUT/$name.flashsale.txt" 2>&1 &
    sale=$!
    sleep 10
    join="$(now_stamp)"
    WORKERS=2 "$REPO_ROOT/scripts/services" start >/dev/null
    sleep 15
    leave="$(now_stamp)"
    kill -TERM "$(read_pid "$RUN_DIR/worker-2.pid")"
    wait "$sale" || die "$name: flashsale failed (see $OUT/$name.flashsale.txt)"
    grep -q '^invariants OK' "$OUT/$name.flashsale.txt" ||
      die "$name broke an invariant (see $OUT/$name.flashsale.txt)"
    "$REPO_ROOT/scripts/services" stop >/dev/null
    cp "$LOG_DIR/worker-1.log" "$OUT/$name.worker-1.log"
    cp "$LOG_DIR/worker-2.log" "$OUT/$name.worker-2.log"
    printf '%s\t%s\t%s\n' "$name" "$join" "$leave" >>"$OUT/runs.tsv"
    log "$name: done"
  done
done
unset PARTITION_ASSIGNMENT
uptime_after="$(uptime)"
log "uptime after: $uptime_after"

python3 - "$OUT" "$uptime_before" "$uptime_after" "${KINDS[@]}" >"$OUT/pause.md" <<'EOF'
import re, sys
from datetime import datetime

out, up_before, up_after, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
LINE = re.compile(r"^[IWE](\d{8} \d\d:\d\d:\d\d\.\d{6}) .*: (assigned|revoked) partitions([ \d]*)")

def stamp(s):
    return datetime.strptime(s, "%Y%m%d %H:%M:%S.%f")

def events(path, who):
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if m:
                yield stamp(m.group(1)), who, m.group(2), [int(p) for p in m.group(3).split()]

def stops(name, join, leave):
    """Per phase (join, leave): each partition's time without an owner."""
    evs = sorted(list(events(f"{out}/{name}.worker-1.log", 1)) +
                 list(events(f"{out}/{name}.worker-2.log", 2)))
    owners, since, phases = {}, {}, {"join": {}, "leave": {}}
    for t, who, what, parts in evs:
        for p in parts:
            own = owners.setdefault(p, set())
            if what == "revoked":
                own.discard(who)
                if not own:
                    since[p] = t
            else:
                if not own and p in since and since[p] >= join:
                    phase = "join" if since[p] < leave else "leave"
                    d = (t - since[p]).total_seconds()
                    phases[phase][p] = phases[phase].get(p, 0) + d
                own.add(who)
    return phases

runs = [l.rstrip("\n").split("\t") for l in open(f"{out}/runs.tsv")]
print("# How long a rebalance stops the partitions\n")
print(f"Measured by `bench/rebalance-pause.sh` ({len(runs) // max(1, len(kinds))} round(s) per kind):"
      " one worker, a second joins mid-sale (spread workload, 1,000 calls/s) and leaves 15 s later.\n")
print(f"```\nuptime before: {up_before}\nuptime after:  {up_after}\n```\n")
print("Seconds a partition had no owner (of 10 partitions), from the workers' logs:\n")
print("| run | join: partitions stopped | join: longest stop s | join: partition-seconds | leave: partitions stopped | leave: longest stop s | leave: partition-seconds |")
print("|---|---|---|---|---|---|---|")
for name, join, leave in runs:
    ph = stops(name, stamp(join), stamp(leave))
    cells = []
    for phase in ("join", "leave"):
        d = ph[phase]
        cells += [str(len(d)), f"{max(d.values(), default=0):.2f}", f"{sum(d.values()):.2f}"]
    print(f"| {name} | " + " | ".join(cells) + " |")
EOF
cat "$OUT/pause.md"
log "wrote $OUT/pause.md"
