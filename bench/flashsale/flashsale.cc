#include "bench/flashsale/flashsale.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/flashsale/load.h"
#include "bench/flashsale/stats.h"
#include "bench/flashsale/verify.h"
#include "glog/logging.h"
#include "grpcpp/grpcpp.h"

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

void Summarize(const Plan& plan, const Ledger& ledger, RunReport* report) {
  std::vector<int64_t> issue_us, e2e_us;
  issue_us.reserve(plan.size());
  int64_t first_sent = 0, last_live_result = 0;
  for (size_t n = 0; n < plan.size(); ++n) {
    const Ledger::Entry e = ledger.entry(n);
    if (e.sent_ns && (first_sent == 0 || e.sent_ns < first_sent)) first_sent = e.sent_ns;
    if (e.answered_ns && e.error_code == 0) {
      issue_us.push_back((e.answered_ns - e.sent_ns) / 1000);
      if (e.answer != v1::ISSUE_OUTCOME_ACCEPTED) {
        ++report->final_at_gateway[OutcomeName(e.answer)];
      }
    } else if (e.answered_ns) {
      ++report->errors[StatusCodeName(e.error_code)];
    }
    if (e.via != Via::kNone) ++report->results[OutcomeName(e.result)];
    if (e.via == Via::kLive) {
      ++report->results_live;
      last_live_result = std::max(last_live_result, e.result_ns);
      if (e.error_code == 0 && e.answer == v1::ISSUE_OUTCOME_ACCEPTED) {
        e2e_us.push_back((e.result_ns - e.sent_ns) / 1000);
      }
    } else if (e.via == Via::kLate) {
      ++report->results_late;
    } else if (e.error_code == 0 && e.answer == v1::ISSUE_OUTCOME_ACCEPTED) {
      ++report->accepted_missing;
    }
  }
  report->issue_latency = coupon::bench::Summarize(std::move(issue_us));
  report->e2e_latency = coupon::bench::Summarize(std::move(e2e_us));
  if (last_live_result > first_sent) {
    report->first_send_to_last_result_seconds = Seconds(last_live_result - first_sent);
  }
}

}  // namespace

absl::Status FlashSaleConfig::Validate() const {
  if (target.empty()) return absl::InvalidArgumentError("--target: empty");
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
  if (concurrency < 1) {
    return absl::InvalidArgumentError("--concurrency: must be positive");
  }
  if (rate < 0) return absl::InvalidArgumentError("--rate: must not be negative");
  if (deadline <= absl::ZeroDuration() || watch_timeout <= absl::ZeroDuration() ||
      watch_idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--deadline, --watch_timeout, --watch_idle_timeout: must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<RunReport> RunFlashSale(const FlashSaleConfig& config) {
  auto channel = grpc::CreateChannel(config.target, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(In(kSetupDeadline))) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", config.target, " within ",
                     absl::FormatDuration(kSetupDeadline)));
  }
  auto stub = v1::CouponService::NewStub(channel);

  const std::string run_id = NewRunId();
  absl::StatusOr<std::vector<int64_t>> coupon_ids =
      CreateCoupons(stub.get(), config, run_id);
  if (!coupon_ids.ok()) return coupon_ids.status();
  const Plan plan = MakePlan(run_id, *coupon_ids, config.users, config.requests,
                             config.repeat, config.seed);
  LOG(INFO) << "run " << run_id << ": coupons " << absl::StrJoin(plan.coupon_ids, ",")
            << ", " << plan.users << " users, " << plan.size() << " requests";

  Ledger ledger(&plan);
  std::vector<std::unique_ptr<CouponWatch>> watches;
  for (int64_t id : plan.coupon_ids) {
    watches.push_back(std::make_unique<CouponWatch>(stub.get(), id, &ledger));
    watches.back()->Start();
  }
  // The gateway sends the headers once a watch is registered: from then on no
  // result passes it by. Anything missed anyway is fetched late and reported.
  for (const auto& watch : watches) {
    if (!watch->WaitRegistered(absl::Now() + kSetupDeadline)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "watch of coupon ", watch->coupon_id(), " was not registered in time"));
    }
  }

  RunReport report;
  report.run_id = run_id;
  report.target = config.target;
  report.mode = config.rate > 0
                    ? absl::StrFormat("open loop, %.0f requests/s", config.rate)
                    : absl::StrCat("closed loop, ", config.concurrency, " in flight");
  report.coupons = config.coupons;
  report.stock = config.stock;
  report.users = plan.users;
  report.requests = static_cast<int64_t>(plan.size());
  report.repeat = config.repeat;

  const CpuSnapshot cpu_before = CpuSnapshot::Take(config.pids);
  const int64_t cpu_start_ns = NowNs();
  int64_t send_ns = 0;
  {
    std::unique_ptr<ProgressPrinter> progress;
    if (config.progress) progress = std::make_unique<ProgressPrinter>(&ledger);
    DriverOptions options;
    options.concurrency = static_cast<int>(config.concurrency);
    options.rate = config.rate;
    options.deadline = config.deadline;
    IssueDriver driver(stub.get(), &plan, &ledger, options);
    const int64_t send_start = NowNs();
    driver.Run();
    const int64_t send_end = NowNs();
    send_ns = send_end - send_start;
    report.max_in_flight = driver.max_in_flight();
    AwaitResults(ledger, config, send_end);
  }
  const CpuSnapshot cpu_after = CpuSnapshot::Take(config.pids);
  report.cpu_window_seconds = Seconds(NowNs() - cpu_start_ns);
  report.cpu = CpuDelta(config.pids, cpu_before, cpu_after);
  report.send_seconds = Seconds(send_ns);

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
                 << " ACCEPTED results by request id";
    absl::Status s = FetchByRequestId(stub.get(), plan, missing,
                                      kLateFetchDeadline, &ledger);
    if (!s.ok()) {
      report.watch_problems.push_back(
          absl::StrCat("fetching late results: ", s.ToString()));
    }
  }

  report.counters = ledger.counters();
  Summarize(plan, ledger, &report);

  absl::StatusOr<DbSnapshot> db = ReadSnapshot(config.pg_dsn, plan.coupon_ids);
  if (!db.ok()) return db.status();
  report.verification = Compare(plan, ledger, config.stock, *db,
                                config.issuer == "redis");
  return report;
}

}  // namespace coupon::bench
