#!/usr/bin/env python3
"""bench/compare/report.py RESULTS_DIR PLOTS_DIR [OTHER_SITTINGS_MD] > benchmarks.md

Turns the raw results of bench/compare.sh into docs/benchmarks.md: issue 12's
goals with their measured values, the seed's section 4 table, latency against
load, the worker's drain, the ratios to the ceilings, a table per workload,
the scaling, the profiles, the plots and the sizing of a large sale. Every
figure on that page comes from the one sitting in RESULTS_DIR. The
one-question benches (bench/storm.sh, bench/rebalance-pause.sh,
bench/replication.sh), each its own sitting, go to OTHER_SITTINGS_MD when
given. Standard library only.
Every number printed here is read from RESULTS_DIR; a missing result prints
as "–" rather than failing, so a partial run still shows what it measured.
"""

import json
import os
import re
import sys

WORKLOADS = ["hot", "spread", "retry", "soldout"]
ISSUERS = ["kafka", "redis"]
NAMES = {"kafka": "Kafka issuer", "redis": "Redis issuer", "bare": "bare gRPC server"}
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

    def curve(self, issuer):
        """[(offered calls/s, sale)], by offered rate; saturation (0) last."""
        points = []
        for name in os.listdir(self.dir):
            m = re.fullmatch(rf"curve-{issuer}-(\d+)\.json", name)
            if m:
                points.append((int(m.group(1)), self.sale(name[:-5])))
        return sorted(points, key=lambda p: (p[0] == 0, p[0]))

    def worker(self, name):
        out = {}
        for line in read_text(self.path(f"{name}.worker")).splitlines():
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = float(parts[1])
        return out

    def ceilings(self):
        """The table of bench/ceilings.sh run inside this sitting."""
        return read_text(self.path("ceilings/ceilings.md"))


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

def met(ok):
    return DASH if ok is None else ("**met**" if ok else "**not met**")


def leq(a, b):
    return None if a is None or b is None else a <= b


def geq(a, b):
    return None if a is None or b is None else a >= b


def curve_point(points, rate):
    for offered, sale in points:
        if offered == rate:
            return sale
    return None


def pgbench_events(r, name, batch):
    tps = r.pgbench_tps(name)
    return tps * batch if tps and batch else None


def drain_figures(r, workload):
    """(decisions/s, pgbench events/s, batch) of the drain of this workload."""
    sale = r.sale(f"drain-{workload}")
    batch = r.worker(f"drain-{workload}").get("batch_mean")
    batch = int(batch + 0.5) if batch else None
    return decisions_per_second(sale), pgbench_events(r, f"worker-{workload}", batch), batch


def ceiling_ratios(text):
    """The gateway's (rate, CPU) ratios to the faster bare server, as printed."""
    m = re.search(r"reaches \*\*([\d.]+)x\*\* .*? at \*\*([\d.]+)x\*\*", text)
    return (float(m.group(1)), float(m.group(2))) if m else (None, None)


def goals_section(p, r, hot_k, hot_r):
    """Issue 12's goals, each with what this sitting measured."""
    kafka = r.curve("kafka")
    at2000 = curve_point(kafka, 2000)
    saturated = curve_point(kafka, 0)
    machine_2000, machine_hot = cpu(at2000, "machine"), cpu(hot_k, "machine")
    broker_2000, broker_sat = cpu(at2000, "kafka"), cpu(saturated, "kafka")
    issue_p99 = get(at2000, "issue_latency", "p99_ms")
    e2e_p50 = get(at2000, "end_to_end_latency", "p50_ms")
    e2e_p99 = get(at2000, "end_to_end_latency", "p99_ms")
    rate_ratio, cpu_ratio = ceiling_ratios(r.ceilings())
    m = r.machine()
    p("## Issue 12's goals, measured in this sitting\n")
    p("| goal | target | measured | |")
    p("|---|---|---|---|")
    p(f"| 1. whole machine CPU per call at 2,000 calls/s (spread) ÷ saturated hot "
      f"| ≤ 2× | {fmt(machine_2000, 4)} ÷ {fmt(machine_hot, 4)} = "
      f"{ratio(machine_2000, machine_hot)} | "
      f"{met(leq(machine_2000 / machine_hot if machine_2000 and machine_hot else None, 2))} |")
    bare_2000 = bare_and_load(curve_point(r.curve("bare"), 2000))
    p(f"| 1. the floor of that ratio here: the bare gRPC server and the load generator "
      f"alone at 2,000 calls/s (spread, open loop) ÷ the same saturated hot figure | "
      f"below 2× for goal 1 to be reachable | {fmt(bare_2000, 4)} ÷ {fmt(machine_hot, 4)} = "
      f"{ratio(bare_2000, machine_hot)} | |")
    p(f"| 1. broker CPU per call at 2,000 calls/s ÷ at saturation (spread): "
      f"the broker's work follows the data | near 1× | {fmt(broker_2000, 4)} ÷ "
      f"{fmt(broker_sat, 4)} = {ratio(broker_2000, broker_sat)} | |")
    p(f"| 1. IssueCoupon p99 at 2,000 calls/s | ≤ 10 ms | {fmt(issue_p99, 1)} ms | "
      f"{met(leq(issue_p99, 10))} |")
    p(f"| 1. accept → result on the stream at 2,000 calls/s, p50 / p99 | ≤ 10 / ≤ 25 ms "
      f"| {fmt(e2e_p50, 1)} / {fmt(e2e_p99, 1)} ms | "
      f"{met(None if e2e_p50 is None else leq(e2e_p50, 10) and leq(e2e_p99, 25))} |")
    p(f"| 2. latency against load, both issuers, with plots | 500 … 10,000 calls/s "
      f"and saturation | {len(kafka)} Kafka and {len(r.curve('redis'))} Redis points "
      f"(*Latency against load*) | {met(len(kafka) >= 6 and len(r.curve('redis')) >= 6)} |")
    p(f"| 3. gateway ÷ the faster bare server, calls/s (hot) | ≥ 0.9× | "
      f"{fmt(rate_ratio, 2)}× | {met(geq(rate_ratio, 0.9))} |")
    p(f"| 3. gateway ÷ the faster bare server, CPU per call (hot) | ≤ 1.15× | "
      f"{fmt(cpu_ratio, 2)}× | {met(leq(cpu_ratio, 1.15))} |")
    for workload, label in (("spread", "over 100 coupons"), ("hot", "one hot coupon")):
        worker, bench, _ = drain_figures(r, workload)
        p(f"| 4. the worker's drain of a backlog, {label}, ÷ pgbench running its "
          f"transaction | ≥ 0.9× | {fmt(worker)} ÷ {fmt(bench)} decisions/s = "
          f"{ratio(worker, bench)} | "
          f"{met(geq(worker / bench if worker and bench else None, 0.9))} |")
    p(f"| 5. the Redis path at its best: copies committed together, no blocking "
      f"of gRPC's threads | both | hot: {fmt(get(hot_r, 'requests_per_second'))} calls/s, "
      f"PostgreSQL {fmt(cpu(hot_r, 'postgres'), 4)} CPU s per 1,000 calls, IssueCoupon "
      f"p99 {fmt(get(hot_r, 'issue_latency', 'p99_ms'), 1)} ms; what is built is in "
      f"*How to read these figures*, *The Redis path* | |")
    p(f"| 6. one quiet sitting, load average before and after | recorded | "
      f"{m.get('uptime before', DASH).strip()} → {m.get('uptime after', DASH).strip()} | |")
    p("| 7. sizing of a sale of 1,000,000 calls/s with 100,000 copies | on paper "
      "| *Sizing a sale of 1,000,000 calls/s* | |")
    p("")


def bare_and_load(sale):
    """The bare server's and the load generator's CPU per 1,000 calls, summed."""
    bare, load = cpu(sale, "bare"), cpu(sale, "flashsale")
    return None if bare is None or load is None else bare + load


def curve_section(p, r, plots):
    p("## Latency against load\n")
    p("The spread workload (100 coupons of 1,000; each user asks twice) on "
      "fresh services, open loop at each offered rate for about 10 s, then "
      "closed loop with 512 in flight (*saturation*). Accept → result is the "
      "time from the ACCEPTED answer to the result on the coupon's stream; the "
      "Redis issuer answers final at once, so it has none. The bare gRPC "
      "server (`bench/bare_server`, answering at once and storing nothing) ran "
      "the same open loop: what gRPC and the load generator alone cost per call "
      "at each rate, its CPU in the gateway column and, as machine, the two "
      "processes' sum (nothing else of the stack works then). CPU in seconds "
      "per 1,000 calls, from `/proc`.\n")
    p("| issuer | offered calls/s | answered calls/s | errors | IssueCoupon p50 / p99 ms "
      "| accept → result p50 / p99 ms | gateway | worker or outbox | broker or Redis "
      "| PostgreSQL | load generator | machine |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for issuer in ISSUERS:
        worker, server = ("worker", "kafka") if issuer == "kafka" else ("outbox", "redis")
        for offered, s in r.curve(issuer):
            p(f"| {NAMES[issuer]} | {fmt(offered) if offered else 'saturation'} | "
              f"{fmt(get(s, 'requests_per_second'))} | {fmt(get(s, 'errors'))} | "
              f"{latency_cell(get(s, 'issue_latency'), ('p50_ms', 'p99_ms'))} | "
              f"{latency_cell(get(s, 'end_to_end_latency'), ('p50_ms', 'p99_ms'))} | "
              + " | ".join(fmt(cpu(s, n), 4) for n in
                           ("gateway", worker, server, "postgres", "flashsale", "machine"))
              + " |")
    for offered, s in r.curve("bare"):
        p(f"| {NAMES['bare']} | {fmt(offered)} | {fmt(get(s, 'requests_per_second'))} | "
          f"{fmt(get(s, 'errors'))} | "
          f"{latency_cell(get(s, 'issue_latency'), ('p50_ms', 'p99_ms'))} | {DASH} | "
          f"{fmt(cpu(s, 'bare'), 4)} | {DASH} | {DASH} | {DASH} | "
          f"{fmt(cpu(s, 'flashsale'), 4)} | {fmt(bare_and_load(s), 4)} |")
    p("")
    p("The Kafka path's worker along the curve (from its `/metrics`, the "
      "warm-up sale left out): batches, their mean events, the mean "
      "transaction, and the mean time from a batch's transaction to its offset "
      "commit, its results' acknowledgements in between.\n")
    p("| offered calls/s | batches | mean events | transaction ms | transaction → commit ms |")
    p("|---|---|---|---|---|")
    for offered, _ in r.curve("kafka"):
        w = r.worker(f"curve-kafka-{offered}")
        p(f"| {fmt(offered) if offered else 'saturation'} | {fmt(w.get('batches'))} | "
          f"{fmt(w.get('batch_mean'), 1)} | {fmt(w.get('transaction_ms_mean'), 2)} | "
          f"{fmt(w.get('batch_ms_mean'), 2)} |")
    p("")
    for chart, title in (("curve-latency", "latency against load"),
                         ("curve-cpu", "CPU per call against load")):
        if os.path.exists(os.path.join(plots, f"{chart}.png")):
            p(f"![{title}](bench/{chart}.png)")
    p("")


def drain_section(p, r):
    p("## The worker's drain of a backlog\n")
    p("The gateway queues the sale's events with no worker running, so every "
      "call is ACCEPTED; then one worker starts and decides them all. The rate "
      "runs from the first to the last decision in `issue_results`. Beside it, "
      "pgbench runs the worker's own transaction "
      "(`bench/compare/pgbench-batched.sql`: its statements in its two "
      "pipelined round trips) at the worker's mean batch and its share of "
      "copies, 1 client, on the same tables.\n")
    p("| backlog | events | worker decisions/s | mean batch | mean transaction ms "
      "| worker CPU s per 1,000 decisions | PostgreSQL CPU s per 1,000 decisions "
      "| pgbench: the worker's transaction, events/s | worker ÷ pgbench |")
    p("|---|---|---|---|---|---|---|---|---|")
    for workload, label in (("spread", "100 coupons of 1,000"), ("hot", "1 coupon of 10,000")):
        sale = r.sale(f"drain-{workload}")
        w = r.worker(f"drain-{workload}")
        worker, bench, batch = drain_figures(r, workload)
        decisions = get(sale, "decisions")
        worker_cpu = (w["cpu_seconds"] * 1000 / decisions
                      if decisions and "cpu_seconds" in w else None)
        p(f"| {label} | {fmt(decisions)} | {fmt(worker)} | {fmt(w.get('batch_mean'), 1)} | "
          f"{fmt(w.get('transaction_ms_mean'), 2)} | {fmt(worker_cpu, 4)} | "
          f"{fmt(cpu(sale, 'postgres'), 4)} | {fmt(bench)} | {ratio(worker, bench)} |")
    p("")


def sizing_section(p, r):
    """A sale of 1,000,000 calls/s with 100,000 copies, from this sitting's costs."""
    drain = r.sale("drain-spread")
    storm = r.sale("kafka-soldout")
    worker_w = r.worker("drain-spread")
    spread_rate, _, _ = drain_figures(r, "spread")
    hot_rate, _, _ = drain_figures(r, "hot")
    decisions = get(drain, "decisions")
    rate = 1_000_000
    copies = 100_000
    p("## Sizing a sale of 1,000,000 calls/s with 100,000 copies\n")
    p("On paper, from the CPU this sitting measured per call, assuming each "
      "part scales out linearly (the network here is loopback, and Kafka keeps "
      "one replica: see *What replication costs* for three). An ACCEPTED call's "
      "whole life (produced, decided, its result published and streamed back) "
      "costs what the spread backlog's drain measured per event; a call the "
      "gateway answers itself (the coupon sold out, the user a holder) costs "
      "what the sold-out storm measured.\n")
    p("| part | CPU s per 1,000 ACCEPTED calls | cores at 1,000,000 ACCEPTED calls/s "
      "| CPU s per 1,000 storm calls | cores at 1,000,000 storm calls/s |")
    p("|---|---|---|---|---|")
    worker_cpu = (worker_w["cpu_seconds"] * 1000 / decisions
                  if decisions and "cpu_seconds" in worker_w else None)
    for label, a, b in (("gateways", cpu(drain, "gateway"), cpu(storm, "gateway")),
                        ("brokers", cpu(drain, "kafka"), cpu(storm, "kafka")),
                        ("workers", worker_cpu, cpu(storm, "worker")),
                        ("PostgreSQL", cpu(drain, "postgres"), cpu(storm, "postgres"))):
        p(f"| {label} | {fmt(a, 4)} | {fmt(a * rate / 1000 if a is not None else None)} | "
          f"{fmt(b, 4)} | {fmt(b * rate / 1000 if b is not None else None)} |")
    p("")
    if not (spread_rate and hot_rate):
        return
    partitions = 10
    p(f"**What runs out first: the order per coupon.** A worker decides its "
      f"partitions' events one transaction at a time, and a coupon's events all "
      f"go to one partition (the design's key). One worker drained "
      f"{fmt(spread_rate)} decisions/s over 100 coupons and {fmt(hot_rate)} "
      f"decisions/s on one hot coupon. With the design's {partitions} partitions, "
      f"at most {partitions} workers share the work: about "
      f"{fmt(partitions * spread_rate)} decisions/s, "
      f"{partitions * spread_rate / rate:.0%} of 1,000,000 calls/s, while gateways and "
      f"brokers scale out by adding machines. Two consequences:\n")
    hot_seconds = copies / hot_rate
    p(f"- *One hot coupon of {fmt(copies)} copies*: its partition's worker needs "
      f"{hot_seconds:.1f} s to hand out the stock. Until its results reach the "
      f"gateways, they cannot prove the coupon sold out, so they accept every "
      f"call: about {fmt(hot_seconds * rate)} events queue up, and draining "
      f"them takes that worker {fmt(hot_seconds * rate / hot_rate)} s. No number of "
      f"gateways, brokers or workers shortens this; only a faster worker "
      f"transaction, or a gateway that turns calls away (UNAVAILABLE, to retry) "
      f"while its coupon's backlog is long, does.")
    needed = rate / spread_rate
    p(f"- *Coupons spread over many partitions*: keeping up with 1,000,000 "
      f"ACCEPTED calls/s takes about {needed:.0f} workers, so at least "
      f"{needed:.0f} partitions of `coupon-issue-request` (the design's 10 are "
      f"{partitions / needed:.0%} of that), each worker with its own "
      f"PostgreSQL connection. PostgreSQL's CPU for the decisions is in the "
      f"table; one primary's commits are serial, so its disk's flush rate, "
      f"not its cores, is the next limit.\n")
    p("Once every coupon is sold out, the storm costs the gateways and PostgreSQL "
      "(each answer is stored as its request id's result) and almost nothing "
      "else: the second half of the table.\n")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: report.py RESULTS_DIR PLOTS_DIR [OTHER_SITTINGS_MD]")
    r = Results(sys.argv[1])
    plots = sys.argv[2]
    other_sittings = sys.argv[3] if len(sys.argv) == 4 else None
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
                "postgresql", "redis", "grpc", "uptime before", "uptime after",
                "duration"]:
        p(f"| {key} | {m.get(key, DASH)} |")
    p("")
    p(f"Reproduce with `bench/compare.sh` ({m.get('duration', 'about 40 min')} here; "
      "it installs gnuplot, perf and ghz if missing, builds, starts the local "
      "stack, empties the sales' tables, and rewrites this page, "
      "`docs/benchmarks-other-sittings.md` and `docs/bench/`). Every figure on "
      "this page comes from that one run; its raw results are in "
      "`bench/results/latest/`. The one-question benches (the sold-out storm "
      "across builds, rebalances, replication) ran in sittings of their own: "
      "[benchmarks-other-sittings.md](benchmarks-other-sittings.md). "
      "`bench/compare.sh --smoke` runs every step at small sizes in a few "
      "minutes.\n")
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

    goals_section(p, r, hot_k, hot_r)

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

    curve_section(p, r, plots)
    drain_section(p, r)

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

    ceilings = r.ceilings()
    if ceilings:
        p(re.sub(r"^(#+) ", r"#\1 ", ceilings, flags=re.M))

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

    sizing_section(p, r)

    notes = read_text(os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md"))
    if notes:
        p(notes)
    print("\n".join(out))
    if other_sittings:
        write_other_sittings(other_sittings)


def write_other_sittings(path):
    """The one-question benches' own tables, each from its own sitting."""
    out = ["# Benchmarks from other sittings\n",
           "<!-- Written by bench/compare.sh (bench/compare/report.py) from "
           "bench/results/*/; edit those, not this file. -->\n",
           "Each section below is one question answered by its own script "
           "(`bench/storm.sh`, `bench/rebalance-pause.sh`, "
           "`bench/replication.sh`) in a sitting of its "
           "own, with its own load average; compare figures within a section, "
           "not across sections or with [benchmarks.md](benchmarks.md). Which "
           "builds the side-by-side tables compare is below.\n"]
    here = os.path.dirname(os.path.abspath(__file__))
    preface = read_text(os.path.join(here, "other-sittings.md"))
    if preface:
        out.append(preface)
    bench_dir = os.path.dirname(here)
    for part in ("storm/storm.md", "storm-hot/storm.md", "storm-spread-2000/storm.md",
                 "storm-redis-hot/storm.md", "storm-redis-soldout/storm.md",
                 "rebalance-pause/pause.md",
                 "replication/replication.md"):
        text = read_text(os.path.join(bench_dir, "results", part))
        if text:
            out.append(re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M))
            out.append(f"Raw results: `bench/results/{os.path.dirname(part)}/`.\n")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
