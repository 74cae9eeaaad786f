// Workers join and leave the group while a sale over many coupons (so every
// partition is busy) keeps flowing: nothing may be issued twice, over the
// stock, or left without a result. With each assignment kind the workers
// offer: eager (the default: all partitions are revoked and handed out again)
// and cooperative (only the partitions that move).

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/wait.h"

namespace coupon::testing {
namespace {

constexpr int kCoupons = 20;
constexpr int64_t kStock = 600;
constexpr int kNewUsersPerWave = 15;  // per coupon
constexpr int kRetriesPerWave = 5;    // earlier users asking again, new ids

class RebalanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RebalanceTest, WorkersComingAndGoingMidSaleLoseAndDuplicateNothing) {
  IssuanceStack stack;
  const std::string assignment = GetParam();
  const auto add_worker = [&] {
    stack.AddWorker([&](worker::WorkerConfig& c) { c.partition_assignment = assignment; });
  };
  // Two gateways take the traffic, as behind a load balancer: coupon c's calls
  // go to gateway c % 2, and half of the results are watched on each.
  stack.AddGateway();
  stack.AddGateway();
  add_worker();
  stack.WaitForAssignment();
  std::vector<int64_t> coupons;
  for (int c = 0; c < kCoupons; ++c) {
    coupons.push_back(stack.CreateCoupon(kStock).coupon_id());
  }
  const std::string run = absl::StrCat("rb", coupons.front());

  std::mutex mu;
  std::vector<std::string> accepted;
  std::map<std::string, std::pair<int64_t, std::string>> request;  // id -> (coupon, user)
  std::map<std::string, v1::IssueOutcome> final_outcome;
  std::atomic<bool> stop{false};
  std::atomic<int> waves{0};
  std::atomic<bool> traffic_ended{false};

  // Traffic: wave after wave of new users (and some earlier ones again),
  // every coupon at once, until told to stop, or until an ASSERT ends it.
  std::thread traffic([&] {
    absl::Cleanup ended = [&] { traffic_ended.store(true); };
    for (int wave = 0; !stop.load() || wave < 3; ++wave) {
      std::vector<std::vector<IssueCall>> calls(kCoupons);
      std::vector<std::thread> senders;
      for (int c = 0; c < kCoupons; ++c) {
        for (int u = 0; u < kNewUsersPerWave; ++u) {
          const int user = wave * kNewUsersPerWave + u;
          calls[c].push_back({absl::StrCat(run, "-u", user),
                              absl::StrCat(run, "-c", c, "-w", wave, "-u", user),
                              {}, {}});
        }
        for (int r = 0; r < kRetriesPerWave && wave > 0; ++r) {
          const int user = (wave * 7 + r * 13) % (wave * kNewUsersPerWave);
          calls[c].push_back({absl::StrCat(run, "-u", user),
                              absl::StrCat(run, "-c", c, "-w", wave, "-again", r),
                              {}, {}});
        }
        senders.emplace_back([&, c] {
          IssueConcurrently(stack.stub(c % 2), coupons[c], calls[c]);
        });
      }
      for (auto& t : senders) t.join();
      std::lock_guard<std::mutex> lock(mu);
      for (int c = 0; c < kCoupons; ++c) {
        for (const IssueCall& call : calls[c]) {
          ASSERT_TRUE(call.status.ok()) << call.status.error_message();
          request[call.request_id] = {coupons[c], call.user_id};
          if (call.response.outcome() == v1::ISSUE_OUTCOME_ACCEPTED) {
            accepted.push_back(call.request_id);
          } else {
            final_outcome[call.request_id] = call.response.outcome();
          }
        }
      }
      waves++;
    }
  });
  // However the test leaves, the traffic stops and is joined first.
  absl::Cleanup join_traffic = [&] {
    stop.store(true);
    traffic.join();
  };

  // The group changes under the traffic: 1 -> 2 -> 3 -> 2 workers, each
  // change waited for until the partitions are shared again. A wave takes
  // at most the calls' 30 s deadline; a traffic thread that failed ends the
  // wait at once.
  auto wait_waves = [&](int n) {
    const int target = waves.load() + n;
    ::testing::AssertionResult done = WaitFor(
        [&] { return waves.load() >= target || traffic_ended.load(); }, absl::Seconds(120),
        absl::StrCat(n, " more waves of traffic (wave ", waves.load(), " now)"));
    if (done && waves.load() < target) {
      return ::testing::AssertionFailure() << "the traffic ended after " << waves.load()
                                           << " waves (see its failure above)";
    }
    return done;
  };
  ASSERT_TRUE(wait_waves(1));
  add_worker();
  stack.WaitForAssignment();
  ASSERT_TRUE(wait_waves(1));
  add_worker();
  stack.WaitForAssignment();
  ASSERT_TRUE(wait_waves(1));
  stack.StopWorker();
  stack.WaitForAssignment();
  ASSERT_TRUE(wait_waves(1));
  std::move(join_traffic).Invoke();
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  for (size_t i = 0; i < accepted.size(); i += 1000) {
    std::vector<std::string> ids(accepted.begin() + i,
                                 accepted.begin() + std::min(accepted.size(), i + 1000));
    WatchOutcome w = WatchToEnd(stack.stub((i / 1000) % 2), ids, absl::Seconds(120));
    ASSERT_TRUE(w.status.ok()) << w.status.error_message();
    for (const auto& r : w.results) {
      EXPECT_TRUE(final_outcome.emplace(r.request_id(), r.outcome()).second)
          << "two results for " << r.request_id();
    }
  }
  EXPECT_EQ(final_outcome.size(), request.size()) << "a request has no result";

  std::map<int64_t, std::set<std::string>> users, winners;
  std::map<int64_t, int64_t> issued;
  for (const auto& [id, target] : request) users[target.first].insert(target.second);
  for (const auto& [id, outcome] : final_outcome) {
    if (outcome != v1::ISSUE_OUTCOME_ISSUED) continue;
    const auto& [coupon, user] = request[id];
    ++issued[coupon];
    EXPECT_TRUE(winners[coupon].insert(user).second) << user << " won twice";
  }
  for (int64_t coupon : coupons) {
    const std::string id = absl::StrCat(coupon);
    const int64_t expected =
        std::min<int64_t>(kStock, static_cast<int64_t>(users[coupon].size()));
    EXPECT_EQ(issued[coupon], expected) << "coupon " << coupon;
    EXPECT_EQ(QueryInt(stack.db(),
                       "SELECT count(*) FROM user_coupons WHERE coupon_id = $1", {id}),
              expected);
    EXPECT_EQ(QueryInt(stack.db(),
                       "SELECT remaining_quantity FROM coupons WHERE coupon_id = $1",
                       {id}),
              kStock - expected);
  }
  LOG(INFO) << "rebalance test (" << GetParam() << "): " << waves.load() << " waves, "
            << request.size() << " requests, " << accepted.size() << " accepted";
}

INSTANTIATE_TEST_SUITE_P(Assignments, RebalanceTest,
                         ::testing::Values("cooperative-sticky", "range"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace coupon::testing
