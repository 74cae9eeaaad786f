#include "bench/flashsale/flashsale.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bench/flashsale/load.h"
#include "bench/flashsale/stats.h"
#include "bench/flashsale/verify.h"
#include "common/pg/pg.h"
#include "common/redis/redis.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"
#include "redis-issuer/records.h"

namespace coupon::bench {
namespace {

constexpr absl::Duration kSetupDeadline = absl::Seconds(10);
constexpr absl::Duration kLateFetchDeadline = absl::Seconds(30);
constexpr int64_t kMaxRequests = 100'000'000;

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

std::string NewRunId() {
  std::random_device rd;
  return absl::StrFormat("fs-%d-%04x", absl::ToUnixSeconds(absl::Now()),
                         rd() & 0xffff);
}

/// Prints one progress line a second to stderr on its own thread, from
/// construction until destruction. The ledger must outlive it.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(const Ledger* ledger) : ledger_(ledger) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressPrinter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    const int64_t start = NowNs();
    Ledger::Counters last;
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; })) {
      const Ledger::Counters c = ledger_->counters();
      std::fprintf(stderr,
                   "[%6.1fs] sent %lld answered %lld (%lld/s) accepted %lld "
                   "final@gw %lld errors %lld | results %lld (%lld/s) pending "
                   "%lld\n",
                   Seconds(NowNs() - start), (long long)c.sent,
                   (long long)c.answered, (long long)(c.answered - last.answered),
                   (long long)c.accepted, (long long)c.final_at_gateway,
                   (long long)c.errors, (long long)c.results,
                   (long long)(c.results - last.results),
                   (long long)c.accepted_pending);
      last = c;
    }
  }

  const Ledger* ledger_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

/// A CPU reading of every accounted process; one thread.
struct CpuSnapshot {
  std::vector<absl::StatusOr<double>> seconds;  // pids, then self, then machine

  static CpuSnapshot Take(const std::vector<NamedPid>& pids) {
    CpuSnapshot s;
    for (const NamedPid& p : pids) s.seconds.push_back(ProcessTreeCpuSeconds(p.pid));
    s.seconds.push_back(ProcessTreeCpuSeconds(getpid()));
    s.seconds.push_back(MachineBusyCpuSeconds());
    return s;
  }
};

std::vector<CpuUsage> CpuDelta(const std::vector<NamedPid>& pids,
                               const CpuSnapshot& before,
                               const CpuSnapshot& after) {
  std::vector<CpuUsage> out;
  for (size_t i = 0; i < before.seconds.size(); ++i) {
    CpuUsage u;
    if (i < pids.size()) {
      u.name = pids[i].name;
      u.pid = pids[i].pid;
    } else if (i == pids.size()) {
      u.name = "flashsale";
      u.pid = getpid();
    } else {
      u.name = "machine";
    }
    const absl::Status bad = !before.seconds[i].ok() ? before.seconds[i].status()
                             : !after.seconds[i].ok() ? after.seconds[i].status()
                                                      : absl::OkStatus();
    if (bad.ok()) {
      u.seconds = *after.seconds[i] - *before.seconds[i];
    } else {
      u.error = std::string(bad.message());
    }
    out.push_back(u);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> CreateCoupons(v1::CouponService::Stub* stub,
                                                   const FlashSaleConfig& config,
                                                   const std::string& run_id) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < config.coupons; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(kSetupDeadline));
    if (!config.admin_token.empty()) {
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", config.admin_token));
    }
    v1::CreateCouponRequest req;
    req.set_name(absl::StrCat("flashsale ", run_id, " #", i));
    req.set_total_quantity(config.stock);
    v1::Coupon coupon;
    absl::Status s = FromGrpc(stub->CreateCoupon(&ctx, req, &coupon), "CreateCoupon");
    if (!s.ok()) return s;
    ids.push_back(coupon.coupon_id());
  }
  return ids;
}

// Waits after the last answer until every ACCEPTED request has its result,
// the timeout passes, or no result came for `idle` (a result missed by the
// streams would otherwise hold us for the whole timeout).
void AwaitResults(const Ledger& ledger, const FlashSaleConfig& config,
                  int64_t send_end_ns) {
  const int64_t deadline = send_end_ns + absl::ToInt64Nanoseconds(config.watch_timeout);
  const int64_t idle = absl::ToInt64Nanoseconds(config.watch_idle_timeout);
  while (true) {
    const Ledger::Counters c = ledger.counters();
    const int64_t now = NowNs();
    if (c.accepted_pending == 0) return;
    if (now >= deadline) {
      LOG(WARNING) << c.accepted_pending << " ACCEPTED results still missing after "
                   << config.watch_timeout;
      return;
    }
    if (now - std::max(c.last_result_ns, send_end_ns) >= idle) {
      LOG(WARNING) << "no result for " << config.watch_idle_timeout << " with "
                   << c.accepted_pending << " ACCEPTED results missing";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<double> CdfQuantiles() {
  std::vector<double> q;
  for (int i = 1; i <= 99; ++i) q.push_back(i / 100.0);
  for (double t : {0.995, 0.999, 0.9995, 0.9999, 1.0}) q.push_back(t);
  return q;
}

LatencyCdf Cdf(std::vector<int64_t> micros) {
  LatencyCdf cdf;
  if (micros.empty()) return cdf;
  std::sort(micros.begin(), micros.end());
  for (double q : CdfQuantiles()) {
    cdf.emplace_back(q, static_cast<double>(Percentile(micros, q)) / 1000.0);
  }
  return cdf;
}

// The measured phase: calls [plan.presell_calls, plan.calls()), and the
// requests those calls sent first.
void Summarize(const Plan& plan, const Ledger& ledger, RunReport* report) {
  report->counters = ledger.counters();
  std::vector<int64_t> issue_us, e2e_us;
  issue_us.reserve(plan.calls());
  int64_t t0 = 0, last_answer = 0;
  for (size_t c = plan.presell_calls; c < plan.calls(); ++c) {
    const Ledger::CallEntry e = ledger.call(c);
    if (e.sent_ns && (t0 == 0 || e.sent_ns < t0)) t0 = e.sent_ns;
    if (e.answered_ns == 0) continue;
    ++report->measured_answered;
    last_answer = std::max(last_answer, e.answered_ns);
    if (e.error_code != 0) {
      ++report->errors[StatusCodeName(e.error_code)];
      continue;
    }
    issue_us.push_back((e.answered_ns - e.sent_ns) / 1000);
    if (e.answer == v1::ISSUE_OUTCOME_ACCEPTED) {
      ++report->measured_accepted;
    } else {
      ++report->final_at_gateway[OutcomeName(e.answer)];
    }
  }
  if (t0 == 0) return;

  // Time steps of 0.1 s, coarser for long runs: at most ~600 points.
  const double span_s =
      Seconds(std::max(last_answer, report->counters.last_result_ns) - t0);
  const double step = std::max(0.1, std::ceil(span_s / 600.0 * 10.0) / 10.0);
  report->timeline_step_seconds = step;
  auto step_of = [&](int64_t ns) -> TimelineStep& {
    const size_t i = static_cast<size_t>(Seconds(std::max<int64_t>(ns - t0, 0)) / step);
    while (report->timeline.size() <= i) {
      report->timeline.push_back({report->timeline.size() * step, 0, 0, 0, 0});
    }
    return report->timeline[i];
  };
  for (size_t c = plan.presell_calls; c < plan.calls(); ++c) {
    const Ledger::CallEntry e = ledger.call(c);
    if (e.answered_ns == 0) continue;
    TimelineStep& t = step_of(e.answered_ns);
    ++t.answered;
    if (e.error_code == 0 && e.answer == v1::ISSUE_OUTCOME_ACCEPTED) ++t.accepted;
  }

  int64_t last_live_result = 0, issued_before = 0;
  std::vector<int64_t> issued_at;
  for (size_t n = 0; n < plan.size(); ++n) {
    const Ledger::Entry e = ledger.entry(n);
    if (e.via != Via::kNone) ++report->results[OutcomeName(e.result)];
    if (e.via == Via::kLate) ++report->results_late;
    const bool accepted = e.error_code == 0 && e.answer == v1::ISSUE_OUTCOME_ACCEPTED;
    if (accepted && e.via == Via::kNone) ++report->accepted_missing;
    if (e.via != Via::kLive) continue;
    ++report->results_live;
    if (e.result == v1::ISSUE_OUTCOME_ISSUED) {
      if (e.result_ns < t0) {
        ++issued_before;
      } else {
        issued_at.push_back(e.result_ns);
      }
    }
    if (e.result_ns < t0) continue;
    ++step_of(e.result_ns).results;
    last_live_result = std::max(last_live_result, e.result_ns);
    if (accepted && e.sent_ns >= t0) e2e_us.push_back((e.result_ns - e.sent_ns) / 1000);
  }
  for (int64_t ns : issued_at) ++step_of(ns).issued_total;
  int64_t issued = issued_before;
  for (TimelineStep& t : report->timeline) {
    issued += t.issued_total;
    t.issued_total = issued;
  }

  report->issue_cdf = Cdf(issue_us);
  report->e2e_cdf = Cdf(e2e_us);
  report->issue_latency = coupon::bench::Summarize(std::move(issue_us));
  report->e2e_latency = coupon::bench::Summarize(std::move(e2e_us));
  if (last_live_result > t0) {
    report->first_send_to_last_result_seconds = Seconds(last_live_result - t0);
  }
}

// EVALSHA calls Redis has served so far: the Redis issuer's decisions.
absl::StatusOr<int64_t> RedisDecisions(const std::string& addr) {
  redis::RedisConfig config;
  config.addr = addr;
  config.pool_size = 1;
  absl::StatusOr<std::unique_ptr<redis::Client>> client = redis::Client::Create(config);
  if (!client.ok()) return client.status();
  absl::StatusOr<redis::Reply> info = (*client)->Command({"INFO", "commandstats"});
  if (!info.ok()) return info.status();
  // "cmdstat_evalsha:calls=123,usec=..." (absent before the first call).
  for (absl::string_view line : absl::StrSplit(info->str, '\n')) {
    if (!absl::ConsumePrefix(&line, "cmdstat_evalsha:calls=")) continue;
    int64_t calls = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find(',')), &calls)) return calls;
  }
  return 0;
}

// The Redis issuer's copies reserved but not yet written: a call answered
// UNAVAILABLE whose client gave up leaves one for the outbox scheduler,
// which writes it after its --reconcile_after. Waits until Redis lists none
// of this run's request ids (they all begin with `run_id`) as reserved.
absl::Status AwaitReservationsSettled(const std::string& addr, const std::string& run_id,
                                      absl::Duration timeout) {
  redis::RedisConfig config;
  config.addr = addr;
  config.pool_size = 1;
  absl::StatusOr<std::unique_ptr<redis::Client>> client = redis::Client::Create(config);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<redis::Reply> reserved =
        (*client)->Command({"ZRANGE", redis_issuer::kReservedKey, "0", "-1"});
    int64_t ours = 0;
    if (reserved.ok()) {
      for (const redis::Reply& id : reserved->elements) {
        if (absl::StartsWith(id.str, run_id)) ++ours;
      }
      if (ours == 0) return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          reserved.ok() ? absl::StrCat(ours, " copies still reserved in Redis")
                        : reserved.status().ToString(),
          " after ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The Redis issuer leaves coupons.remaining_quantity to the outbox scheduler.
// Waits until none of the run's outbox rows is PENDING; returns the seconds
// from `since_ns` (steady clock) until then.
absl::StatusOr<double> AwaitStockSync(const std::string& pg_dsn,
                                      const std::vector<int64_t>& coupon_ids,
                                      int64_t since_ns, absl::Duration timeout) {
  auto conn = pg::Connection::Connect(pg_dsn, absl::Seconds(5));
  if (!conn.ok()) return conn.status();
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    auto rows = (*conn)->Exec(
        "SELECT count(*) FROM coupon_outbox WHERE coupon_id = ANY($1::bigint[]) "
        "AND state = 'PENDING'",
        {pg::Int64Array(coupon_ids)});
    if (!rows.ok()) return rows.status();
    if (rows->GetInt64(0, 0) == 0) return Seconds(NowNs() - since_ns);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          rows->GetInt64(0, 0), " outbox rows still PENDING after ",
          absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// The Kafka worker's decisions since `since`: issue_results rows of the
// run's coupons, over the span of their transactions' start times.
absl::Status WorkerDecisions(const std::string& pg_dsn,
                             const std::vector<int64_t>& coupon_ids,
                             absl::Time since, RunReport* report) {
  auto conn = pg::Connection::Connect(pg_dsn, absl::Seconds(5));
  if (!conn.ok()) return conn.status();
  auto rows = (*conn)->Exec(
      "SELECT count(*), coalesce(extract(epoch FROM max(decided_at) - "
      "min(decided_at)), 0)::float8::text FROM issue_results "
      "WHERE coupon_id = ANY($1::bigint[]) AND decided_at >= "
      "to_timestamp($2::float8)",
      {pg::Int64Array(coupon_ids),
       absl::StrFormat("%.6f", absl::ToDoubleSeconds(since - absl::UnixEpoch()))});
  if (!rows.ok()) return rows.status();
  report->decisions = rows->GetInt64(0, 0);
  double seconds = 0;
  if (!absl::SimpleAtod(rows->Get(0, 1), &seconds)) seconds = 0;
  report->decisions_seconds = seconds;
  report->decisions_source =
      "issue_results rows, first to last worker transaction";
  return absl::OkStatus();
}

}  // namespace

const Workload* FindWorkload(absl::string_view name) {
  // name, coupons, stock, users, calls, ids per user, resends, presell
  static const Workload kWorkloads[] = {
      {"hot", 1, 10000, 100000, 200000, 2, 0, 0},
      {"spread", 100, 1000, 100000, 200000, 2, 0, 0},
      // 40,000 users x 5 calls: one id sent 3 times, then 2 new ids.
      {"retry", 1, 10000, 40000, 200000, 3, 2, 0},
      // 10,000 buyers take the stock first; then 100,000 others call.
      {"soldout", 1, 10000, 100000, 100000, 1, 0, 10000},
  };
  for (const Workload& w : kWorkloads) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

std::string WorkloadNames() { return "hot, spread, retry, soldout"; }

std::vector<std::string> FlashSaleConfig::Targets() const {
  return absl::StrSplit(target, ',', absl::SkipWhitespace());
}

absl::Status FlashSaleConfig::Resolve() {
  const Workload* w = FindWorkload(workload);
  if (w == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--workload: \"", workload, "\" is none of ", WorkloadNames()));
  }
  for (auto [field, preset] :
       {std::pair{&coupons, w->coupons}, {&stock, w->stock}, {&users, w->users},
        {&requests, w->requests}, {&repeat, w->repeat}, {&resend, w->resend},
        {&presell, w->presell}}) {
    if (*field == -1) *field = preset;
  }
  if (Targets().empty()) return absl::InvalidArgumentError("--target: empty");
  if (coupons < 1 || coupons > 1000) {
    return absl::InvalidArgumentError("--coupons: must be 1 to 1000");
  }
  if (stock < 1) return absl::InvalidArgumentError("--stock: must be positive");
  if (users < 1 || users > 100'000'000) {
    return absl::InvalidArgumentError("--users: must be 1 to 100000000");
  }
  if (requests < 1 || requests > kMaxRequests) {
    return absl::InvalidArgumentError("--requests: must be 1 to 100000000");
  }
  if (repeat < 1) return absl::InvalidArgumentError("--repeat: must be positive");
  if (resend < 0) return absl::InvalidArgumentError("--resend: must not be negative");
  if (presell < 0 || presell > 10'000'000) {
    return absl::InvalidArgumentError("--presell: must be 0 to 10000000");
  }
  if (concurrency < 1) {
    return absl::InvalidArgumentError("--concurrency: must be positive");
  }
  if (rate < 0) return absl::InvalidArgumentError("--rate: must not be negative");
  if (retries < 0) return absl::InvalidArgumentError("--retries: must not be negative");
  if (deadline <= absl::ZeroDuration() || watch_timeout <= absl::ZeroDuration() ||
      watch_idle_timeout <= absl::ZeroDuration() ||
      retry_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--deadline, --watch_timeout, --watch_idle_timeout: must be positive; "
        "--retry_backoff: must not be negative");
  }
  if (issuer != "kafka" && issuer != "redis") {
    return absl::InvalidArgumentError(
        absl::StrCat("--issuer: must be kafka or redis, got \"", issuer, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<RunReport> RunFlashSale(const FlashSaleConfig& config) {
  std::vector<std::unique_ptr<v1::CouponService::Stub>> owned;
  std::vector<v1::CouponService::Stub*> stubs;
  for (const std::string& target : config.Targets()) {
    auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    if (!channel->WaitForConnected(In(kSetupDeadline))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", target, " within ",
                       absl::FormatDuration(kSetupDeadline)));
    }
    owned.push_back(v1::CouponService::NewStub(channel));
    stubs.push_back(owned.back().get());
  }

  const std::string run_id = NewRunId();
  absl::StatusOr<std::vector<int64_t>> coupon_ids =
      CreateCoupons(stubs.front(), config, run_id);
  if (!coupon_ids.ok()) return coupon_ids.status();
  if (config.on_coupons) config.on_coupons(*coupon_ids);
  PlanSpec spec;
  spec.users = static_cast<uint32_t>(config.users);
  spec.calls = static_cast<uint64_t>(config.requests);
  spec.repeat = static_cast<uint32_t>(config.repeat);
  spec.resend = static_cast<uint32_t>(config.resend);
  spec.presell = static_cast<uint32_t>(config.presell);
  spec.seed = config.seed;
  const Plan plan = MakePlan(run_id, *coupon_ids, spec);
  LOG(INFO) << "run " << run_id << ": coupons " << absl::StrJoin(plan.coupon_ids, ",")
            << ", " << plan.users << " users, " << plan.size() << " requests in "
            << plan.calls() << " calls";

  Ledger ledger(&plan);
  // One stream per coupon, spread over the targets: every gateway streams
  // every decision. The gateway sends the headers once a watch is registered:
  // from then on no result passes it by. Anything missed anyway is fetched
  // late and reported.
  std::vector<std::unique_ptr<CouponWatch>> watches;
  if (config.verify) {
    for (size_t i = 0; i < plan.coupon_ids.size(); ++i) {
      watches.push_back(std::make_unique<CouponWatch>(
          stubs[i % stubs.size()], plan.coupon_ids[i], &ledger));
      watches.back()->Start();
    }
  }
  for (const auto& watch : watches) {
    if (!watch->WaitRegistered(absl::Now() + kSetupDeadline)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "watch of coupon ", watch->coupon_id(), " was not registered in time"));
    }
  }

  RunReport report;
  report.run_id = run_id;
  report.target = config.target;
  report.workload = config.workload;
  report.issuer = config.issuer;
  report.mode = config.rate > 0
                    ? absl::StrFormat("open loop, %.0f requests/s", config.rate)
                    : absl::StrCat("closed loop, ", config.concurrency, " in flight");
  report.coupons = config.coupons;
  report.stock = config.stock;
  report.users = plan.users;
  report.requests = static_cast<int64_t>(plan.calls() - plan.presell_calls);
  report.repeat = config.repeat;
  report.resend = config.resend;
  report.presell = static_cast<int64_t>(plan.presell_calls);
  report.verified = config.verify;

  DriverOptions options;
  options.concurrency = static_cast<int>(config.concurrency);
  options.rate = config.rate;
  options.deadline = config.deadline;
  options.retries = static_cast<int>(config.retries);
  options.retry_backoff = config.retry_backoff;
  IssueDriver driver(stubs, &plan, &ledger, options);
  std::unique_ptr<ProgressPrinter> progress;
  if (config.progress) progress = std::make_unique<ProgressPrinter>(&ledger);
  if (plan.presell_calls > 0) {
    LOG(INFO) << "sell-out phase: " << plan.presell_calls << " calls";
    driver.Run(0, plan.presell_calls);
    AwaitResults(ledger, config, NowNs());
  }

  const absl::Time measured_start = absl::Now();
  absl::StatusOr<int64_t> redis_before = config.redis_addr.empty()
                                             ? absl::StatusOr<int64_t>(0)
                                             : RedisDecisions(config.redis_addr);
  const CpuSnapshot cpu_before = CpuSnapshot::Take(config.pids);
  const int64_t cpu_start_ns = NowNs();
  const int64_t send_start = NowNs();
  driver.Run(plan.presell_calls, plan.calls());
  const int64_t send_end = NowNs();
  report.max_in_flight = driver.max_in_flight();
  report.retries = driver.retries();
  if (config.verify) AwaitResults(ledger, config, send_end);
  progress.reset();
  const CpuSnapshot cpu_after = CpuSnapshot::Take(config.pids);
  report.cpu_window_seconds = Seconds(NowNs() - cpu_start_ns);
  report.cpu = CpuDelta(config.pids, cpu_before, cpu_after);
  report.send_seconds = Seconds(send_end - send_start);
  if (!config.redis_addr.empty()) {
    absl::StatusOr<int64_t> redis_after = RedisDecisions(config.redis_addr);
    if (redis_before.ok() && redis_after.ok()) {
      report.decisions = *redis_after - *redis_before;
      report.decisions_seconds = report.send_seconds;
      report.decisions_source = "Redis EVALSHA calls over the send phase";
    } else {
      LOG(WARNING) << "decisions/s unknown: "
                   << (redis_before.ok() ? redis_after.status() : redis_before.status());
    }
  }

  for (auto& w : watches) w->Cancel();
  for (auto& w : watches) {
    grpc::Status s = w->Wait();
    if (w->ended_early()) {
      report.watch_problems.push_back(absl::StrCat(
          "coupon ", w->coupon_id(), " stream ended early after ", w->delivered(),
          " results: ", StatusCodeName(s.error_code()), " ", s.error_message()));
    }
  }
  watches.clear();

  if (!config.verify) {
    Summarize(plan, ledger, &report);
    return report;
  }
  std::vector<size_t> missing;
  for (size_t n = 0; n < plan.size(); ++n) {
    const Ledger::Entry e = ledger.entry(n);
    if (e.error_code == 0 && e.answer == v1::ISSUE_OUTCOME_ACCEPTED &&
        e.via == Via::kNone) {
      missing.push_back(n);
    }
  }
  if (!missing.empty()) {
    LOG(WARNING) << "fetching " << missing.size()
                 << " ACCEPTED results by request id, the first "
                 << plan.RequestId(missing.front());
    absl::Status s = FetchByRequestId(stubs, plan, missing, kLateFetchDeadline, &ledger);
    if (!s.ok()) {
      report.watch_problems.push_back(
          absl::StrCat("fetching late results: ", s.ToString()));
    }
  }

  if (config.issuer == "redis" && !config.redis_addr.empty()) {
    absl::Status settled =
        AwaitReservationsSettled(config.redis_addr, plan.run_id, config.watch_timeout);
    if (!settled.ok()) {
      report.watch_problems.push_back(
          absl::StrCat("reservations settled by the outbox scheduler: ", settled.ToString()));
    }
  }
  if (config.issuer == "redis") {
    absl::StatusOr<double> synced = AwaitStockSync(config.pg_dsn, plan.coupon_ids,
                                                   send_end, config.watch_timeout);
    if (synced.ok()) {
      report.stock_sync_seconds = *synced;
    } else {
      report.watch_problems.push_back(
          absl::StrCat("stock sync by the outbox scheduler: ", synced.status().ToString()));
    }
  }
  Summarize(plan, ledger, &report);
  if (config.issuer == "kafka") {
    absl::Status s = WorkerDecisions(config.pg_dsn, plan.coupon_ids, measured_start, &report);
    if (!s.ok()) LOG(WARNING) << "decisions/s unknown: " << s;
  }

  absl::StatusOr<DbSnapshot> db = ReadSnapshot(config.pg_dsn, plan.coupon_ids);
  if (!db.ok()) return db.status();
  report.verification = Compare(plan, ledger, config.stock, *db,
                                config.issuer == "redis");
  return report;
}

}  // namespace coupon::bench
