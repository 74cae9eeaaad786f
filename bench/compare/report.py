#!/usr/bin/env python3
"""bench/compare/report.py RESULTS_DIR PLOTS_DIR > benchmarks.md

Turns the raw results of bench/compare.sh into docs/benchmarks.md: the seed's
section 4 table with measured values, the ratios to the ceilings, a table per
workload, the scaling, the profiles and the plots. Standard library only.
Every number printed here is read from RESULTS_DIR; a missing result prints
as "–" rather than failing, so a partial run still shows what it measured.
"""

import json
import os
import re
import sys

WORKLOADS = ["hot", "spread", "retry", "soldout"]
ISSUERS = ["kafka", "redis"]
NAMES = {"kafka": "Kafka issuer", "redis": "Redis issuer"}
DASH = "–"


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def fmt(value, digits=0):
    if value is None:
        return DASH
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return DASH
    return f"{a / b:.{digits}f}×"


class Results:
    def __init__(self, directory):
        self.dir = directory

    def path(self, name):
        return os.path.join(self.dir, name)

    def sale(self, name):
        return load_json(self.path(f"{name}.json"))

    def machine(self):
        lines = read_text(self.path("machine.txt")).splitlines()
        return dict(line.split(": ", 1) for line in lines if ": " in line)

    def ghz(self, name):
        return load_json(self.path(f"{name}.json"))

    def pgbench_tps(self, name):
        m = re.search(r"^tps = ([\d.]+)", read_text(self.path(f"pgbench-{name}.txt")), re.M)
        return float(m.group(1)) if m else None

    def pgbench_latency_ms(self, name):
        m = re.search(r"^latency average = ([\d.]+) ms",
                      read_text(self.path(f"pgbench-{name}.txt")), re.M)
        return float(m.group(1)) if m else None

    def kafka_producer(self):
        text = read_text(self.path("kafka-producer.txt"))
        m = re.search(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
                      r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, "
                      r"(\d+) ms 95th, (\d+) ms 99th", text)
        if not m:
            return None
        return {"records": int(m.group(1)), "rate": float(m.group(2)),
                "mb": float(m.group(3)), "p50": int(m.group(6)), "p99": int(m.group(8))}

    def kafka_consumer(self):
        lines = [l for l in read_text(self.path("kafka-consumer.txt")).splitlines()
                 if l.strip()]
        for i, line in enumerate(lines):
            if line.startswith("start.time") and i + 1 < len(lines):
                header = [h.strip() for h in line.split(",")]
                values = [v.strip() for v in lines[i + 1].split(",")]
                row = dict(zip(header, values))
                try:
                    return {"rate": float(row["nMsg.sec"]),
                            "messages": int(row["data.consumed.in.nMsg"])}
                except (KeyError, ValueError):
                    return None
        return None

    def rss(self, name):
        out = {}
        for line in read_text(self.path(f"{name}.rss")).splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = int(parts[1])
        return out

    def perf(self, name, lines=10):
        text = read_text(self.path(f"perf-{name}.txt")).splitlines()
        return [l.rstrip() for l in text if l.strip()][:lines]


def cpu(sale, name):
    if not sale:
        return None
    total = 0.0
    found = False
    for c in sale.get("cpu", []):
        if "seconds_per_1000_requests" not in c:
            continue
        if c["name"] == name or (name == "worker" and c["name"].startswith("worker")):
            total += c["seconds_per_1000_requests"]
            found = True
    return total if found else None


def get(sale, *keys):
    value = sale
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return None
        value = value[k]
    return value


def decisions_per_second(sale):
    rate = get(sale, "decisions_per_second")
    return rate if rate else None


def latency_cell(lat, keys=("p50_ms", "p95_ms", "p99_ms", "p999_ms")):
    if not lat or not lat.get("count"):
        return DASH
    return " / ".join(f"{lat[k]:.1f}" for k in keys)


def ghz_percentile(g, pct):
    for d in (g or {}).get("latencyDistribution") or []:
        if d.get("percentage") == pct:
            return d["latency"] / 1e6
    return None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py RESULTS_DIR PLOTS_DIR")
    r = Results(sys.argv[1])
    plots = sys.argv[2]
    m = r.machine()
    sales = {(i, w): r.sale(f"{i}-{w}") for i in ISSUERS for w in WORKLOADS}
    bare = r.sale("bare-flashsale")
    bare_rps = get(bare, "requests_per_second")
    ghz_bare = r.ghz("ghz-bare")
    naive1 = r.pgbench_tps("naive-c1")
    naive8 = r.pgbench_tps("naive-c8")
    batched = r.pgbench_tps("batched-c1")
    batched_events = batched * 500 if batched else None
    producer = r.kafka_producer()
    consumer = r.kafka_consumer()
    hot_k, hot_r = sales[("kafka", "hot")], sales[("redis", "hot")]
    spread_k, spread_r = sales[("kafka", "spread")], sales[("redis", "spread")]
    scaling = {w: r.sale(f"kafka-spread-w{w}") for w in (1, 2, 3)}

    out = []
    p = out.append
    p("# Benchmarks: the design's two systems, measured\n")
    p("<!-- Written by bench/compare.sh (bench/compare/report.py); edit those, "
      "not this file. -->\n")
    p("Section 4 of the design document compares the Redis-based system and the "
      "Kafka-based one in adjectives. This page replaces the adjectives with "
      "figures from one sitting on one machine: both issuers behind the same "
      "gateway and API, driven by the same load generator (`bench/flashsale`), "
      "with the ceilings of the machine measured beside them.\n")
    p("| machine | |\n|---|---|")
    for key in ["date", "commit", "cpu", "cores", "memory", "kernel", "kafka",
                "postgresql", "redis", "grpc"]:
        p(f"| {key} | {m.get(key, DASH)} |")
    p("")
    p("Reproduce with `bench/compare.sh` (about 15 minutes; it installs gnuplot, "
      "perf and ghz if missing, builds, starts the local stack, and rewrites this "
      "page and `docs/bench/`). The raw results of this run are in "
      "`bench/results/latest/`. `bench/compare.sh --smoke` runs every step at "
      "small sizes in a minute or two.\n")
    p("Everything shares one machine with 2 cores: the load generator, the "
      "services, Kafka, PostgreSQL and Redis. Wall-clock rates therefore measure "
      "the whole system on 2 cores, not a server alone; CPU seconds per 1,000 "
      "requests, read from `/proc` for each process, are the steadier figure. "
      "Every service runs one instance: one gateway, one worker (or the outbox "
      "scheduler), one broker, fsync on in PostgreSQL, Redis with AOF "
      "`everysec`.\n")

    conditions = read_text(r.path("conditions.md"))
    if conditions:
        p(conditions)

    # --- The seed's section 4, measured --------------------------------------
    p("## The design's section 4, measured\n")
    p("Hot workload unless stated: 1 coupon of 10,000 copies, 100,000 users "
      "asking twice, 200,000 calls, 512 in flight.\n")
    p("### 4.1 Performance\n")
    p("| item | the design says (Redis / Kafka) | Redis issuer, measured | Kafka issuer, measured |")
    p("|---|---|---|---|")
    p(f"| processing speed: IssueCoupon p50 / p99 | very fast (in memory) / fast "
      f"(network overhead) | {latency_cell(get(hot_r, 'issue_latency'), ('p50_ms', 'p99_ms'))} ms "
      f"| {latency_cell(get(hot_k, 'issue_latency'), ('p50_ms', 'p99_ms'))} ms |")
    p(f"| concurrent throughput: calls answered per second, hot / spread | high / "
      f"very high (parallel partitions) | {fmt(get(hot_r, 'requests_per_second'))} / "
      f"{fmt(get(spread_r, 'requests_per_second'))} | "
      f"{fmt(get(hot_k, 'requests_per_second'))} / {fmt(get(spread_k, 'requests_per_second'))} |")
    p(f"| issuer decisions per second, spread | | {fmt(decisions_per_second(spread_r))} "
      f"(Lua script runs) | {fmt(decisions_per_second(spread_k))} (worker) |")
    p(f"| latency until the final result: end-to-end p50 / p99, hot | milliseconds / "
      f"tens of milliseconds | answered final at once (the call's own latency) | "
      f"{latency_cell(get(hot_k, 'end_to_end_latency'), ('p50_ms', 'p99_ms'))} ms for the "
      f"{fmt(get(hot_k, 'accepted'))} ACCEPTED |")
    p(f"| first call → last result, hot / spread | | "
      f"{fmt(get(hot_r, 'first_send_to_last_result_seconds'), 2)} s / "
      f"{fmt(get(spread_r, 'first_send_to_last_result_seconds'), 2)} s | "
      f"{fmt(get(hot_k, 'first_send_to_last_result_seconds'), 2)} s / "
      f"{fmt(get(spread_k, 'first_send_to_last_result_seconds'), 2)} s |")
    w = {k: decisions_per_second(v) for k, v in scaling.items()}
    p(f"| scalability: worker decisions/s with 1 / 2 / 3 workers, spread | vertical / "
      f"horizontal (more partitions) | one Redis; gateways scale out | "
      f"{fmt(w[1])} / {fmt(w[2])} / {fmt(w[3])} (see *Scaling*) |")
    p(f"| whole machine CPU s per 1,000 calls, hot | | {fmt(cpu(hot_r, 'machine'), 3)} | "
      f"{fmt(cpu(hot_k, 'machine'), 3)} |")
    p("")
    p("### 4.2 Concurrency control\n")
    runs = [s for s in sales.values() if s] + [s for s in scaling.values() if s]
    checks = sum(get(s, "checks") or 0 for s in runs)
    ok = all(get(s, "invariants_ok") for s in runs)
    for issuer in ISSUERS:
        mine = [s for (i, _), s in sales.items() if i == issuer and s]
        issued = sum(sum(c["issued"] for c in s.get("issued_per_coupon", [])) for s in mine)
        stock = sum(sum(c["stock"] for c in s.get("issued_per_coupon", [])) for s in mine)
        p(f"- **{NAMES[issuer]}**: {len(mine)} sales, {fmt(issued)} copies issued of "
          f"{fmt(stock)} on sale, "
          f"{'no' if all(get(s, 'invariants_ok') for s in mine) else 'SOME'} "
          f"invariant broken.")
    p(f"\nOver-issue, duplicate copies, ACCEPTED requests without exactly one "
      f"result, and stock counters that disagree with the rows were checked in "
      f"PostgreSQL after every run: {fmt(checks)} checks, "
      f"{'all held' if ok else 'SOME FAILED'}. The design's \"ZSet rank\" and "
      f"\"ordered partition\" both hold under this load; what differs is where "
      f"the order is decided (a Lua script inside Redis, or one worker per "
      f"partition) and what happens when that place fails, which is section 4.3.\n")
    p("### 4.3 Durability\n")
    p("Measured by the fault-injection suite, not here: see "
      "[reliability.md](reliability.md) for each fault (worker, broker, "
      "gateway, PostgreSQL and Redis killed during a sale) and what it cost.\n")
    p("### 4.4 Operations: what each system runs, and its memory after the hot sale\n")
    p("| process | Redis issuer: resident MiB | Kafka issuer: resident MiB |")
    p("|---|---|---|")
    rss_r, rss_k = r.rss("redis-hot"), r.rss("kafka-hot")
    for name in ["gateway", "worker-1", "outbox", "kafka", "redis", "postgres"]:
        a = rss_r.get(name)
        b = rss_k.get(name)
        if a is None and b is None:
            continue
        p(f"| {name} | {fmt(a / 1024 if a else None, 1)} | {fmt(b / 1024 if b else None, 1)} |")
    p("\nBoth systems run all three servers here, because the Redis issuer's "
      "gateway still writes PostgreSQL and the stack starts Kafka anyway; a "
      "Redis-only deployment needs no broker, which is the design's point in "
      "4.4. The broker's JVM is the largest process of the Kafka system.\n")

    # --- Ratios ---------------------------------------------------------------
    p("## Ratios to the ceilings\n")
    p("| ratio | value | what it says |")
    p("|---|---|---|")
    p(f"| Kafka-issuer gateway ÷ bare gRPC server, calls/s (hot) | "
      f"{ratio(get(hot_k, 'requests_per_second'), bare_rps)} | how much of the "
      f"most any gateway can answer here the Kafka path keeps |")
    p(f"| Redis-issuer gateway ÷ bare gRPC server, calls/s (hot) | "
      f"{ratio(get(hot_r, 'requests_per_second'), bare_rps)} | the same for the "
      f"Redis path |")
    for issuer in ISSUERS:
        p(f"| {NAMES[issuer]} gateway ÷ bare gRPC server, CPU s per call (hot) | "
          f"{ratio(cpu(sales[(issuer, 'hot')], 'gateway'), cpu(bare, 'bare'))} | "
          f"what a call costs the gateway beyond gRPC itself; steadier than rates "
          f"on a shared machine |")
    p(f"| Kafka path ÷ Redis path, calls/s: hot / spread / retry / soldout | " +
      " / ".join(ratio(get(sales[('kafka', wl)], 'requests_per_second'),
                       get(sales[('redis', wl)], 'requests_per_second'))
                 for wl in WORKLOADS) + " | above 1: the Kafka path answers faster |")
    p(f"| Redis path ÷ Kafka path, whole-machine CPU per call (hot / spread) | "
      f"{ratio(cpu(hot_r, 'machine'), cpu(hot_k, 'machine'))} / "
      f"{ratio(cpu(spread_r, 'machine'), cpu(spread_k, 'machine'))} | "
      f"above 1: the Redis path needs more hardware per call |")
    p(f"| worker decisions/s (spread, 1 worker) ÷ PostgreSQL, one transaction "
      f"per event (pgbench, 1 client) | {ratio(w[1] or decisions_per_second(spread_k), naive1)} | "
      f"what batching buys the worker over the naive design |")
    p(f"| worker decisions/s ÷ PostgreSQL, the worker's batches of 500 "
      f"(pgbench, 1 client) | {ratio(w[1] or decisions_per_second(spread_k), batched_events)} | "
      f"how close the worker comes to its database's batched ceiling |")
    p(f"| flashsale ÷ ghz, calls/s against the bare server | "
      f"{ratio(bare_rps, get(ghz_bare, 'rps'))} | the load generator cross-checked "
      f"by an independent tool |")
    for issuer in ISSUERS:
        g = r.ghz(f"ghz-gateway-{issuer}")
        p(f"| ghz against the {NAMES[issuer]} gateway ÷ flashsale hot, calls/s | "
          f"{ratio(get(g, 'rps'), get(sales[(issuer, 'hot')], 'requests_per_second'))} | "
          f"ghz: one new user per call, coupon of 10,000 |")
    p("")

    # --- Ceilings -------------------------------------------------------------
    p("## The ceilings\n")
    p("| ceiling | measured |")
    p("|---|---|")
    p(f"| bare gRPC server (`bench/bare_server`, same gRPC and callback API), "
      f"flashsale, 512 in flight | {fmt(bare_rps)} calls/s, p50 / p99 "
      f"{latency_cell(get(bare, 'issue_latency'), ('p50_ms', 'p99_ms'))} ms; server "
      f"CPU {fmt(cpu(bare, 'bare'), 4)} s per 1,000 calls |")
    p(f"| the same, ghz 512 in flight | {fmt(get(ghz_bare, 'rps'))} calls/s, p50 / p99 "
      f"{fmt(ghz_percentile(ghz_bare, 50), 1)} / {fmt(ghz_percentile(ghz_bare, 99), 1)} ms |")
    p(f"| PostgreSQL, the worker's statements, one transaction per event, 1 client "
      f"| {fmt(naive1)} events/s ({fmt(r.pgbench_latency_ms('naive-c1'), 2)} ms each) |")
    p(f"| the same, 8 clients (they queue on the coupon's row lock) | {fmt(naive8)} events/s |")
    p(f"| PostgreSQL, one transaction per 500 events, 1 client | "
      f"{fmt(batched_events)} events/s ({fmt(batched, 1)} transactions/s) |")
    if producer:
        p(f"| Kafka producer (`ProducerPerformance`, 80-byte records, acks=all, "
          f"idempotent, 10 partitions) | {fmt(producer['rate'])} records/s, p50 / p99 "
          f"{producer['p50']} / {producer['p99']} ms |")
    else:
        p(f"| Kafka producer | {DASH} |")
    p(f"| Kafka consumer (`ConsumerPerformance`) | "
      f"{fmt(consumer['rate'] if consumer else None)} records/s |")
    p("")

    # --- Per workload ---------------------------------------------------------
    p("## Every workload, both issuers\n")
    p("Workloads (`flashsale --workload`): **hot** 1 coupon × 10,000, 100,000 "
      "users × 2 calls; **spread** 100 coupons × 1,000, same users; **retry** "
      "40,000 users × 5 calls, one request id sent 3 times then 2 new ids; "
      "**soldout** 10,000 buyers take the stock first, then 100,000 other users "
      "call (measured).\n")
    for wl in WORKLOADS:
        k, rd = sales[("kafka", wl)], sales[("redis", wl)]
        p(f"### {wl}\n")
        p("| figure | Kafka issuer | Redis issuer |")
        p("|---|---|---|")
        rows = [
            ("calls measured", lambda s: fmt(get(s, "requests"))),
            ("calls answered per second", lambda s: fmt(get(s, "requests_per_second"))),
            ("ACCEPTED (queued for the worker)", lambda s: fmt(get(s, "measured_accepted"))),
            ("errors", lambda s: fmt(get(s, "errors"))),
            ("IssueCoupon p50 / p95 / p99 / p99.9 ms", lambda s: latency_cell(get(s, "issue_latency"))),
            ("end-to-end p50 / p95 / p99 / p99.9 ms (ACCEPTED)", lambda s: latency_cell(get(s, "end_to_end_latency"))),
            ("first call → last result, s", lambda s: fmt(get(s, "first_send_to_last_result_seconds"), 2)),
            ("issuer decisions per second", lambda s: fmt(decisions_per_second(s))),
            ("CPU s / 1,000 calls: gateway", lambda s: fmt(cpu(s, "gateway"), 4)),
            ("CPU s / 1,000 calls: worker or outbox", lambda s: fmt(cpu(s, "worker") if cpu(s, "worker") is not None else cpu(s, "outbox"), 4)),
            ("CPU s / 1,000 calls: Kafka", lambda s: fmt(cpu(s, "kafka"), 4)),
            ("CPU s / 1,000 calls: PostgreSQL", lambda s: fmt(cpu(s, "postgres"), 4)),
            ("CPU s / 1,000 calls: Redis", lambda s: fmt(cpu(s, "redis"), 4)),
            ("CPU s / 1,000 calls: load generator", lambda s: fmt(cpu(s, "flashsale"), 4)),
            ("CPU s / 1,000 calls: whole machine", lambda s: fmt(cpu(s, "machine"), 4)),
            ("invariants", lambda s: DASH if not s else
             (f"OK ({s['checks']:,} checks)" if s.get("invariants_ok") else "VIOLATED")),
        ]
        for label, f in rows:
            p(f"| {label} | {f(k)} | {f(rd)} |")
        p("")
        for chart in ["throughput", "latency", "issued"]:
            png = f"{chart}-{wl}.png"
            if os.path.exists(os.path.join(plots, png)):
                p(f"![{chart}, {wl}](bench/{png})")
        p("")

    # --- Scaling ----------------------------------------------------------------
    p("## Scaling the Kafka path: 1, 2 and 3 workers (spread workload)\n")
    p("| workers | decisions/s | calls/s | first call → last result | worker CPU s / 1,000 calls | invariants |")
    p("|---|---|---|---|---|---|")
    for n in (1, 2, 3):
        s = scaling[n]
        p(f"| {n} | {fmt(decisions_per_second(s))} | {fmt(get(s, 'requests_per_second'))} | "
          f"{fmt(get(s, 'first_send_to_last_result_seconds'), 2)} s | {fmt(cpu(s, 'worker'), 4)} | "
          f"{DASH if not s else ('OK' if s.get('invariants_ok') else 'VIOLATED')} |")
    p("\nOn 2 cores, extra workers cannot add CPU: the figures show the cost of "
      "the split (more, smaller transactions), not the gain a cluster would "
      "see. Partitions bound the useful workers at 10.\n")

    # --- Profiles ---------------------------------------------------------------
    p("## Where the time goes: perf during a hot sale\n")
    p("`perf record -F 499` of every process of the stack (services, servers "
      "with PostgreSQL's backends, load generator) during a separate hot "
      "sale per issuer (its figures are not used above). First by thread "
      "name (gRPC's `default-executo` threads and `grpc_global_tim` run the "
      "gateway's handlers; `rdk:*` are librdkafka's; `postgres`, `redis-server` "
      "and `java` are the servers; `flashsale` is the load generator), then "
      "the gateway's own hottest functions.\n")
    for issuer in ISSUERS:
        p(f"### {NAMES[issuer]}\n")
        p("CPU samples by process:\n")
        p("```")
        p("\n".join(r.perf(f"{issuer}-processes", 10)) or "(no profile)")
        p("```\n")
        p("By thread name:\n")
        p("```")
        p("\n".join(r.perf(f"{issuer}-threads", 12)) or "(no profile)")
        p("```\n")
        p("The gateway's hottest functions:\n")
        p("```")
        p("\n".join(r.perf(f"{issuer}-gateway", 15)) or "(no profile)")
        p("```\n")

    # The one-question benches keep their own tables; each heading goes one
    # level down here.
    bench_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for part in ("storm/storm.md", "storm-hot/storm.md", "storm-spread-2000/storm.md",
                 "storm-redis-hot/storm.md", "rebalance-pause/pause.md",
                 "replication/replication.md", "ceilings/ceilings.md"):
        text = read_text(os.path.join(bench_dir, "results", part))
        if text:
            p(re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M))
            p(f"Raw results: `bench/results/{os.path.dirname(part)}/`.\n")

    notes = read_text(os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md"))
    if notes:
        p(notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()
