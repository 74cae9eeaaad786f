#!/usr/bin/env python3
"""A calling service's use of the coupon API, in Python (grpcio).

Creates a coupon of --stock copies with the admin token, opens one
WatchIssueResults stream for every request id (with_positions), lets --users
users ask for it concurrently (IssueCoupon, each with its own request id,
retried after UNAVAILABLE with the same id; the first --wait-users of them with
wait_for_result), prints each QUEUED position and final result as it comes,
and then checks what it saw against GetIssueResult, ListUserCoupons and
GetCoupon. Exits 0 when everything is consistent, 1 on any inconsistency, 2
when it cannot run (no stubs, no token, no gateway).

The stubs come from proto/ at run time (scripts/examples generates them into
examples/python/gen/, or set COUPON_PY_GEN): see README.md.
"""

import argparse
import concurrent.futures
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.environ.get("COUPON_PY_GEN", os.path.join(HERE, "gen")))

try:
    import grpc
    from coupon.v1 import coupon_pb2 as pb
    from coupon.v1 import coupon_service_pb2 as api
    from coupon.v1 import coupon_service_pb2_grpc as api_grpc
except ImportError as e:  # the stubs are generated, never committed
    sys.exit(f"coupon_client: {e}: generate the stubs first (scripts/examples, or README.md)")

ISSUED = pb.ISSUE_OUTCOME_ISSUED
SOLD_OUT = pb.ISSUE_OUTCOME_SOLD_OUT
ACCEPTED = pb.ISSUE_OUTCOME_ACCEPTED
QUEUED = pb.ISSUE_OUTCOME_QUEUED
NOT_FINAL = (pb.ISSUE_OUTCOME_UNSPECIFIED, ACCEPTED, QUEUED)


def outcome_name(outcome):
    return pb.IssueOutcome.Name(outcome).removeprefix("ISSUE_OUTCOME_")


def position_text(pos):
    return f"{pos.requests_ahead} ahead ({pb.QueuePosition.Scope.Name(pos.scope)})"


def parse_args():
    port = os.environ.get("GATEWAY_PORT", "50051")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--addr", default=os.environ.get("GATEWAY_ADDR", f"127.0.0.1:{port}"),
                   help="the gateway (env GATEWAY_ADDR; default 127.0.0.1:$GATEWAY_PORT)")
    p.add_argument("--token-file",
                   default=os.environ.get("ADMIN_TOKEN_FILE",
                                          os.path.join(REPO_ROOT, ".local", "admin-token")),
                   help="the admin token for CreateCoupon (env ADMIN_TOKEN_FILE)")
    p.add_argument("--stock", type=int, default=5, help="copies of the coupon")
    p.add_argument("--users", type=int, default=20, help="users asking for one copy each")
    p.add_argument("--wait-users", type=int, default=2,
                   help="how many of them send wait_for_result")
    p.add_argument("--concurrency", type=int, default=8, help="IssueCoupon calls at once")
    p.add_argument("--call-timeout", type=float, default=5.0, help="deadline of a unary call, s")
    p.add_argument("--wait-timeout", type=float, default=3.0,
                   help="deadline of an IssueCoupon with wait_for_result, s")
    p.add_argument("--watch-timeout", type=float, default=30.0,
                   help="how long to wait for every final result, s")
    p.add_argument("--attempts", type=int, default=6,
                   help="tries of a call that fails UNAVAILABLE (same request id)")
    p.add_argument("--coupon-settle", type=float, default=0.0,
                   help="how long GetCoupon's issued_quantity may lag the results, s "
                        "(0: not at all; the Redis issuer's outbox syncs every 10 s: use 30)")
    p.add_argument("--prefix", default="py", help="request ids are <prefix>-<coupon>-<user>")
    args = p.parse_args()
    if not 1 <= args.users <= 1000:  # one watch takes at most 1,000 request ids
        p.error("--users must be 1 to 1000")
    if args.stock < 1 or args.concurrency < 1 or args.attempts < 1:
        p.error("--stock, --concurrency and --attempts must be at least 1")
    return args


class Sale:
    """What the client saw, shared by the issuing threads and the watch thread."""

    def __init__(self, args, coupon_id):
        self.args = args
        self.coupon_id = coupon_id
        self.lock = threading.Lock()
        self.users = [f"user-{i:02d}" for i in range(args.users)]
        self.rid = {u: f"{args.prefix}-{coupon_id}-{u}" for u in self.users}
        self.user_of = {r: u for u, r in self.rid.items()}
        self.answers = {}        # request id -> IssueCouponResponse
        self.waited = set()      # request ids sent with wait_for_result
        self.early_gets = {}     # request id -> "QUEUED" / "NOT_FOUND" / IssueResult
        self.finals = {}         # request id -> the watch's final IssueResult
        self.queued_updates = [] # (request id, QueuePosition) from the watch
        self.accepted_positions = 0
        self.retries = 0
        self.streams = 0
        self.problems = []       # inconsistencies: exit 1
        self.notes = []          # worth reporting, not failures

    def say(self, line):
        with self.lock:
            print(line, flush=True)

    def problem(self, text):
        with self.lock:
            self.problems.append(text)
            print(f"INCONSISTENT: {text}", flush=True)

    def note(self, text):
        with self.lock:
            self.notes.append(text)
            print(f"note: {text}", flush=True)


def backoff(attempt):
    """Before try attempt + 1: 0.1 s doubling up to 2 s, with jitter."""
    return min(2.0, 0.1 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


# Failures after which the call may or may not have been carried out. This
# client never cancels a unary call itself, so CANCELLED is the server's or
# the connection's doing: a gateway shutting down has answered an IssueCoupon
# in flight CANCELLED.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def with_retries(sale, what, call):
    """call() until it does not fail UNAVAILABLE (or CANCELLED), at most
    --attempts times.

    Safe for every call it wraps: reads, and IssueCoupon, whose request id makes
    a retry the same request (never a second copy)."""
    for attempt in range(1, sale.args.attempts + 1):
        try:
            return call()
        except grpc.RpcError as e:
            if e.code() not in RETRYABLE or attempt == sale.args.attempts:
                raise
            pause = backoff(attempt)
            with sale.lock:
                sale.retries += 1
            sale.say(f"retry  {what}: {e.code().name} ({e.details()}), again in {pause:.2f}s")
            time.sleep(pause)
    raise AssertionError("unreachable")


def issue(sale, stub, user):
    rid = sale.rid[user]
    wait = user in sale.users[: sale.args.wait_users]
    req = api.IssueCouponRequest(coupon_id=sale.coupon_id, user_id=user, request_id=rid,
                                 wait_for_result=wait)
    timeout = sale.args.wait_timeout if wait else sale.args.call_timeout
    try:
        resp = with_retries(sale, f"IssueCoupon {rid}",
                            lambda: stub.IssueCoupon(req, timeout=timeout))
    except grpc.RpcError as e:
        sale.problem(f"IssueCoupon {rid} failed: {e.code().name} {e.details()}")
        return
    text = f"issue  {rid}: {outcome_name(resp.outcome)}"
    if resp.outcome == ISSUED:
        text += f" user_coupon_id={resp.user_coupon_id}"
    if resp.HasField("position"):
        text += f", {position_text(resp.position)}"
    if wait:
        text += " (wait_for_result)"
    with sale.lock:
        sale.answers[rid] = resp
        if wait:
            sale.waited.add(rid)
        if resp.outcome == ACCEPTED and resp.HasField("position"):
            sale.accepted_positions += 1
    sale.say(text)
    if resp.outcome == ACCEPTED:
        # Where does it stand right now? A gateway that knows positions answers
        # QUEUED; one that does not answers NOT_FOUND until it is decided.
        get = api.GetIssueResultRequest(request_id=rid, user_id=user,
                                        coupon_id=sale.coupon_id, with_position=True)
        try:
            r = with_retries(sale, f"GetIssueResult {rid}",
                             lambda: stub.GetIssueResult(get, timeout=sale.args.call_timeout))
            early = r
            if r.outcome == QUEUED:
                early = "QUEUED"
                sale.say(f"get    {rid}: QUEUED, {position_text(r.position)}")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                sale.problem(f"GetIssueResult {rid} failed: {e.code().name} {e.details()}")
                return
            early = "NOT_FOUND"
        with sale.lock:
            sale.early_gets[rid] = early


def watch(sale, stub, deadline):
    """Reads final results (and QUEUED positions) until every id has its final one.

    A stream ended by UNAVAILABLE or RESOURCE_EXHAUSTED is opened again for the
    ids still missing, which also sends what was decided meanwhile: at most
    --attempts times in a row without a result in between."""
    pending = set(sale.rid.values())
    failures = 0
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            sale.problem(f"no final result within --watch-timeout for {sorted(pending)}")
            return
        req = api.WatchIssueResultsRequest(request_ids=sorted(pending), with_positions=True)
        with sale.lock:
            sale.streams += 1
        ahead = {}  # this stream's last position per request id
        try:
            for r in stub.WatchIssueResults(req, timeout=left):
                rid = r.request_id
                failures = 0
                if rid not in sale.user_of:
                    sale.problem(f"watch sent a result for an id it was not asked for: {rid}")
                elif r.outcome == QUEUED:
                    if rid not in pending:
                        sale.note(f"QUEUED for {rid} after its final result")
                    n = r.position.requests_ahead
                    if rid in ahead and n > ahead[rid]:
                        sale.note(f"{rid}'s position grew on one stream: {ahead[rid]} -> {n}")
                    ahead[rid] = n
                    with sale.lock:
                        sale.queued_updates.append((rid, r.position))
                    sale.say(f"watch  {rid}: QUEUED, {position_text(r.position)}")
                elif r.outcome in NOT_FINAL:
                    sale.problem(f"watch sent {outcome_name(r.outcome)} for {rid}")
                else:
                    first = sale.finals.get(rid)
                    if first is not None and (first.outcome, first.user_coupon_id) != (
                            r.outcome, r.user_coupon_id):
                        sale.problem(f"two final results for {rid}: "
                                     f"{outcome_name(first.outcome)}, {outcome_name(r.outcome)}")
                    with sale.lock:
                        sale.finals.setdefault(rid, r)
                    pending.discard(rid)
                    text = f"watch  {rid}: {outcome_name(r.outcome)}"
                    if r.outcome == ISSUED:
                        text += f" user_coupon_id={r.user_coupon_id}"
                    sale.say(text + f", {r.remaining_quantity} left")
            if pending:
                sale.problem(f"the watch ended before every id had its final result: "
                             f"{sorted(pending)}")
            return
        except grpc.RpcError as e:
            retryable = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
            failures += 1
            if e.code() in retryable and failures < sale.args.attempts:
                sale.note(f"watch ended {e.code().name} ({e.details()}); watching again")
                time.sleep(backoff(failures))
                continue
            sale.problem(f"watch failed: {e.code().name} {e.details()}; "
                         f"no final result for {sorted(pending)}")
            return


def check(sale, stub):
    """Compares the watch's finals with every other view of the same requests."""
    args, timeout = sale.args, sale.args.call_timeout
    issued = {rid: r for rid, r in sale.finals.items() if r.outcome == ISSUED}
    for rid, r in sale.finals.items():
        if r.outcome not in (ISSUED, SOLD_OUT):
            sale.problem(f"{rid}: {outcome_name(r.outcome)}, but each user asked once "
                         f"for an open coupon")
        if r.outcome == ISSUED and r.user_coupon_id == 0:
            sale.problem(f"{rid}: ISSUED without user_coupon_id")
        answer = sale.answers.get(rid)
        if answer is not None and answer.outcome not in NOT_FINAL and (
                answer.outcome, answer.user_coupon_id) != (r.outcome, r.user_coupon_id):
            sale.problem(f"{rid}: IssueCoupon answered {outcome_name(answer.outcome)}, "
                         f"the watch {outcome_name(r.outcome)}")
        early = sale.early_gets.get(rid)
        if isinstance(early, pb.IssueResult) and early.outcome not in NOT_FINAL and (
                early.outcome, early.user_coupon_id) != (r.outcome, r.user_coupon_id):
            sale.problem(f"{rid}: GetIssueResult answered {outcome_name(early.outcome)}, "
                         f"the watch {outcome_name(r.outcome)}")
        get = api.GetIssueResultRequest(request_id=rid, user_id=sale.user_of[rid],
                                        coupon_id=sale.coupon_id)
        try:
            got = with_retries(sale, f"GetIssueResult {rid}",
                               lambda: stub.GetIssueResult(get, timeout=timeout))
            if (got.outcome, got.user_coupon_id) != (r.outcome, r.user_coupon_id):
                sale.problem(f"{rid}: GetIssueResult answers {outcome_name(got.outcome)} "
                             f"({got.user_coupon_id}), the watch said "
                             f"{outcome_name(r.outcome)} ({r.user_coupon_id})")
        except grpc.RpcError as e:
            sale.problem(f"GetIssueResult {rid}: {e.code().name} {e.details()}")
    if len(issued) > args.stock:
        sale.problem(f"{len(issued)} ISSUED, more than the stock of {args.stock}")
    if len({r.user_coupon_id for r in issued.values()}) != len(issued):
        sale.problem("two ISSUED results share a user_coupon_id")
    if len(issued) < args.stock and any(r.outcome == SOLD_OUT for r in sale.finals.values()):
        sale.problem(f"SOLD_OUT with {args.stock - len(issued)} copies never issued")

    for user in sale.users:
        rid = sale.rid[user]
        copies, after = [], 0
        while True:  # the user's coupons from every sale; this coupon's are ours
            req = api.ListUserCouponsRequest(user_id=user, page_size=1000,
                                             after_user_coupon_id=after)
            try:
                page = with_retries(sale, f"ListUserCoupons {user}",
                                    lambda: stub.ListUserCoupons(req, timeout=timeout))
            except grpc.RpcError as e:
                sale.problem(f"ListUserCoupons {user}: {e.code().name} {e.details()}")
                break
            copies += [c for c in page.coupons if c.coupon_id == sale.coupon_id]
            after = page.next_after_user_coupon_id
            if after == 0:
                break
        if len(copies) > 1:
            sale.problem(f"{user} holds {len(copies)} copies of coupon {sale.coupon_id}")
        if rid in issued:
            if not any(c.user_coupon_id == issued[rid].user_coupon_id and c.request_id == rid
                       for c in copies):
                sale.problem(f"{user}'s ISSUED copy {issued[rid].user_coupon_id} is missing "
                             f"from ListUserCoupons")
        elif copies:
            sale.problem(f"{user} holds a copy, but {rid} was not ISSUED")

    # The Kafka issuer's worker commits the stock with the result, so GetCoupon
    # agrees at once; the Redis issuer's stock reaches PostgreSQL later, through
    # the outbox (--coupon-settle).
    settle_start = time.monotonic()
    while True:
        try:
            coupon = with_retries(sale, "GetCoupon", lambda: stub.GetCoupon(
                api.GetCouponRequest(coupon_id=sale.coupon_id), timeout=timeout))
        except grpc.RpcError as e:
            sale.problem(f"GetCoupon: {e.code().name} {e.details()}")
            return None
        if coupon.issued_quantity >= len(issued) or (
                time.monotonic() - settle_start >= args.coupon_settle):
            break
        time.sleep(0.5)
    if args.coupon_settle and coupon.issued_quantity == len(issued):
        sale.note(f"GetCoupon agreed with the results "
                  f"{time.monotonic() - settle_start:.1f}s after the sale")
    if coupon.issued_quantity != len(issued):
        sale.problem(f"GetCoupon says {coupon.issued_quantity} issued, "
                     f"the results {len(issued)}")
    if coupon.issued_quantity + coupon.remaining_quantity != coupon.total_quantity:
        sale.problem(f"GetCoupon: issued {coupon.issued_quantity} + remaining "
                     f"{coupon.remaining_quantity} != total {coupon.total_quantity}")
    return coupon


def counts(outcomes):
    tally = {}
    for o in outcomes:
        tally[o] = tally.get(o, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(tally.items())) or "none"


def report(sale, coupon):
    answers = list(sale.answers.values())
    waited = [sale.answers[r] for r in sorted(sale.waited)]
    early = [e if isinstance(e, str) else "final " + outcome_name(e.outcome)
             for e in sale.early_gets.values()]
    ahead = [p.requests_ahead for _, p in sale.queued_updates]
    scopes = {pb.QueuePosition.Scope.Name(p.scope) for _, p in sale.queued_updates}
    print(f"\n== report: coupon {sale.coupon_id}, stock {sale.args.stock}, "
          f"{len(sale.users)} users, gateway {sale.args.addr}")
    print(f"IssueCoupon answers:    {counts(outcome_name(a.outcome) for a in answers)}"
          f" ({sale.accepted_positions} ACCEPTED with a position); "
          f"retries: {sale.retries}")
    print(f"  wait_for_result:      {counts(outcome_name(a.outcome) for a in waited)}")
    print(f"GetIssueResult right after ACCEPTED (with_position): {counts(early)}")
    if ahead:
        print(f"QUEUED updates:         {len(ahead)} for "
              f"{len({r for r, _ in sale.queued_updates})} requests, requests_ahead "
              f"{min(ahead)}..{max(ahead)}, scope {', '.join(sorted(scopes))}")
    else:
        print("QUEUED updates:         none (this gateway sent no positions)")
    print(f"final outcomes (watch): {counts(outcome_name(r.outcome) for r in sale.finals.values())}"
          f" on {sale.streams} stream(s)")
    if coupon is not None:
        print(f"GetCoupon:              issued {coupon.issued_quantity}, remaining "
              f"{coupon.remaining_quantity} of {coupon.total_quantity}")
    for n in sorted(set(sale.notes)):
        times = sale.notes.count(n)
        print(f"note: {n}" + (f" ({times} times)" if times > 1 else ""))
    if sale.problems:
        print(f"INCONSISTENT: {len(sale.problems)} problem(s):")
        for p in sale.problems:
            print(f"  - {p}")
    else:
        print("consistent: every check passed")


def main():
    args = parse_args()
    try:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        sys.exit(f"coupon_client: no admin token ({e}); scripts/up or scripts/services start "
                 f"writes one to .local/admin-token")
    channel = grpc.insecure_channel(args.addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        sys.exit(f"coupon_client: no gateway answers on {args.addr}")
    stub = api_grpc.CouponServiceStub(channel)

    # Not retried: CreateCoupon has no idempotency key, so a retry after a lost
    # answer would make a second coupon.
    try:
        coupon = stub.CreateCoupon(
            api.CreateCouponRequest(name=f"{args.prefix} example sale", total_quantity=args.stock),
            metadata=(("authorization", f"Bearer {token}"),), timeout=args.call_timeout)
    except grpc.RpcError as e:
        sys.exit(f"coupon_client: CreateCoupon: {e.code().name} {e.details()}")
    sale = Sale(args, coupon.coupon_id)
    print(f"created coupon {coupon.coupon_id} with {coupon.total_quantity} copies; "
          f"{args.users} users ask for one each", flush=True)

    # The watch opens first, so it sees the requests while they are queued.
    deadline = time.monotonic() + args.watch_timeout
    watcher = threading.Thread(target=watch, args=(sale, stub, deadline))
    watcher.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        for f in [pool.submit(issue, sale, stub, u) for u in sale.users]:
            f.result()
    watcher.join()

    coupon = check(sale, stub)
    report(sale, coupon)
    channel.close()
    return 1 if sale.problems else 0


if __name__ == "__main__":
    sys.exit(main())
