#!/usr/bin/env python3
"""bench/latency-segments.py GATEWAY_LOG WORKER_LOG [RUN_ID]

Where a Kafka-path call's time goes, from the services' own logs at
GLOG_v=1: for every request the gateway answered ACCEPTED, the gateway's
receipt of the call, its answer (the broker acknowledged the event), the
worker's decision (the batch's transaction committed, the result about to be
published) and the gateway's result listener reading the result. Prints
p50 / p90 / p99 of each step, in ms, over the requests of RUN_ID (flashsale's
run id, the request ids' prefix; default: the run of the last request in the
gateway's log).

    GLOG_v=1 scripts/services start
    build/bench/flashsale --workload spread --rate 2000 --requests 20000 --users 10000
    bench/latency-segments.py .local/logs/gateway.log .local/logs/worker-1.log

One worker's log: with several, a request decided by another is left out.
The log lines cost CPU (four per call at the gateway), so read the steps'
shares, not the totals, against an unlogged run's figures. Standard library
only.
"""

import datetime
import sys


def stamp(line):
    # glog: "I1203 06:25:37.508004 21058 file.cc:611] message"
    # (glog 0.6 prints the year too: "I20261203 06:25:37.508004 ...").
    head = line[1:].split(" ", 2)
    day = head[0][-4:]
    t = datetime.datetime.strptime(day + " " + head[1], "%m%d %H:%M:%S.%f")
    return t.timestamp()


def after(line, marker):
    return line.split(marker, 1)[1].split()[0].rstrip(":")


def read(gateway_log, worker_log):
    received, accepted, listened, decided = {}, {}, {}, {}
    with open(gateway_log, errors="replace") as f:
        for line in f:
            if "grpc_service.cc" in line and "] IssueCoupon request " in line:
                rid = after(line, "IssueCoupon request ")
                if " answered ACCEPTED" in line:
                    accepted.setdefault(rid, stamp(line))
                elif " answered " not in line:
                    received.setdefault(rid, stamp(line))
            elif "result_listener.cc" in line and "] result for request " in line:
                listened.setdefault(after(line, "result for request "), stamp(line))
    with open(worker_log, errors="replace") as f:
        for line in f:
            if "batch_processor.cc" in line and " decided " in line and "] request " in line:
                decided.setdefault(after(line, "] request "), stamp(line))
    return received, accepted, listened, decided


def quantiles(values):
    v = sorted(values)
    n = len(v)
    return "p50 %7.1f  p90 %7.1f  p99 %7.1f ms" % tuple(
        v[min(n - 1, int(n * q))] * 1e3 for q in (0.5, 0.9, 0.99))


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[0])
    received, accepted, listened, decided = read(sys.argv[1], sys.argv[2])
    ids = [r for r in accepted if r in received and r in decided and r in listened]
    if not ids:
        sys.exit("no request is in all four places: were both services started with GLOG_v=1?")
    run = sys.argv[3] if len(sys.argv) == 4 else max(ids, key=lambda r: received[r]).rsplit("-", 1)[0]
    ids = [r for r in ids if r.rsplit("-", 1)[0] == run]
    if not ids:
        sys.exit("no accepted request of run %s is in both logs" % run)
    print("run %s: %d accepted requests traced" % (run, len(ids)))
    steps = [
        ("call received -> ACCEPTED (produce acknowledged)", received, accepted),
        ("ACCEPTED -> decided by the worker (committed)", accepted, decided),
        ("decided -> read by the gateway's listener", decided, listened),
        ("call received -> result at the gateway", received, listened),
    ]
    for name, start, end in steps:
        print("%-50s %s" % (name, quantiles([end[r] - start[r] for r in ids])))


if __name__ == "__main__":
    main()
