// A place in line and one-call answers (issue 13): ACCEPTED carries how many
// requests are ahead, a request-id watch that asks for positions gets QUEUED
// updates before the final result, GetIssueResult answers QUEUED for a
// request still queued, IssueCoupon with wait_for_result answers the final
// outcome (or ACCEPTED with the position when its deadline comes first), and
// the Redis issuer answers the coupon's queue rank. Real gateway, workers,
// Kafka, PostgreSQL and Redis.

#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"

namespace coupon::testing {
namespace {

using ::testing::AnyOf;

grpc::Status Issue(v1::CouponService::Stub& stub, int64_t coupon,
                   const std::string& user, const std::string& request_id,
                   v1::IssueCouponResponse* out, bool wait = false,
                   absl::Duration deadline = absl::Seconds(10)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::IssueCouponRequest req;
  req.set_coupon_id(coupon);
  req.set_user_id(user);
  req.set_request_id(request_id);
  req.set_wait_for_result(wait);
  return stub.IssueCoupon(&ctx, req, out);
}

grpc::Status Get(v1::CouponService::Stub& stub, const std::string& request_id,
                 bool with_position, v1::IssueResult* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetIssueResultRequest req;
  req.set_request_id(request_id);
  req.set_with_position(with_position);
  return stub.GetIssueResult(&ctx, req, out);
}

class QueuePositionTest : public ::testing::Test {
 protected:
  IssuanceStack stack_;
};

// The worker stopped after one decision of the coupon's partition: the
// requests queued behind it stand 0, 1, 2, ... ahead, as every way of
// asking says, until a worker decides them.
TEST_F(QueuePositionTest, QueuedRequestsKnowTheirPlaceUntilDecided) {
  stack_.AddGateway();
  stack_.AddWorker();
  stack_.WaitForAssignment();
  const int64_t coupon = stack_.CreateCoupon(100).coupon_id();
  const std::string run = absl::StrCat("pos-", coupon);

  // One decision, so the gateway knows how far the partition is decided.
  v1::IssueCouponResponse first;
  ASSERT_TRUE(Issue(stack_.stub(), coupon, "u-first", run + "-first", &first).ok());
  WatchOutcome decided = WatchToEnd(stack_.stub(), {run + "-first"});
  ASSERT_EQ(decided.results.size(), 1u);
  EXPECT_EQ(decided.results[0].outcome(), v1::ISSUE_OUTCOME_ISSUED);
  stack_.StopWorker();

  constexpr int kQueued = 5;
  for (int i = 0; i < kQueued; ++i) {
    v1::IssueCouponResponse resp;
    grpc::Status s = Issue(stack_.stub(), coupon, absl::StrCat("u", i),
                           absl::StrCat(run, "-", i), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
    ASSERT_TRUE(resp.has_position()) << "request " << i;
    EXPECT_EQ(resp.position().requests_ahead(), i);
    EXPECT_EQ(resp.position().scope(), v1::QueuePosition::SCOPE_PARTITION);
  }

  // A resend of a queued request: ACCEPTED again, with its place.
  v1::IssueCouponResponse again;
  ASSERT_TRUE(Issue(stack_.stub(), coupon, "u3", run + "-3", &again).ok());
  EXPECT_EQ(again.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  EXPECT_EQ(again.position().requests_ahead(), 3);

  // GetIssueResult: QUEUED when asked for the position, NOT_FOUND as before
  // otherwise.
  v1::IssueResult got;
  grpc::Status s = Get(stack_.stub(), run + "-3", /*with_position=*/true, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.outcome(), v1::ISSUE_OUTCOME_QUEUED);
  EXPECT_EQ(got.position().requests_ahead(), 3);
  EXPECT_EQ(got.user_id(), "u3");
  EXPECT_EQ(Get(stack_.stub(), run + "-3", false, &got).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // wait_for_result with no worker: ACCEPTED with the place, before the
  // call's deadline.
  v1::IssueCouponResponse waited;
  s = Issue(stack_.stub(), coupon, "u-wait", run + "-wait", &waited, /*wait=*/true,
            absl::Seconds(2));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(waited.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  EXPECT_EQ(waited.position().requests_ahead(), kQueued);

  // A watch with positions: QUEUED at once, then the final result once a
  // worker is back; the place never grows.
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchIssueResultsRequest req;
  req.add_request_ids(run + "-4");
  req.set_with_positions(true);
  auto reader = stack_.stub().WatchIssueResults(&ctx, req);
  v1::IssueResult r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.outcome(), v1::ISSUE_OUTCOME_QUEUED);
  EXPECT_EQ(r.position().requests_ahead(), 4);
  stack_.AddWorker();
  int64_t last_ahead = r.position().requests_ahead();
  std::vector<v1::IssueResult> finals;
  while (reader->Read(&r)) {
    if (r.outcome() == v1::ISSUE_OUTCOME_QUEUED) {
      EXPECT_LE(r.position().requests_ahead(), last_ahead);
      last_ahead = r.position().requests_ahead();
      EXPECT_TRUE(finals.empty()) << "a position after the final result";
    } else {
      finals.push_back(r);
    }
  }
  grpc::Status end = reader->Finish();
  EXPECT_TRUE(end.ok()) << end.error_message();
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0].outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_FALSE(finals[0].has_position());

  // Decided now: GetIssueResult with_position gives the final result.
  s = Get(stack_.stub(), run + "-3", true, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.outcome(), v1::ISSUE_OUTCOME_ISSUED);

  // With a worker running, wait_for_result answers the final outcome.
  s = Issue(stack_.stub(), coupon, "u-wait2", run + "-wait2", &waited, true,
            absl::Seconds(20));
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(waited.outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_GT(waited.user_coupon_id(), 0);
  v1::IssueResult stored;
  ASSERT_TRUE(Get(stack_.stub(), run + "-wait2", false, &stored).ok());
  EXPECT_EQ(stored.user_coupon_id(), waited.user_coupon_id());
}

// A gateway that saw no result of the partition (no replay window here)
// counts from the workers' committed offsets, which it reads every 10 s.
TEST_F(QueuePositionTest, WithoutResultsThePlaceCountsFromTheCommittedOffsets) {
  stack_.AddGateway();
  stack_.AddWorker();
  stack_.WaitForAssignment();
  const int64_t coupon = stack_.CreateCoupon(100).coupon_id();
  const std::string run = absl::StrCat("pos-committed-", coupon);
  v1::IssueCouponResponse resp;
  ASSERT_TRUE(Issue(stack_.stub(), coupon, "u-first", run + "-first", &resp).ok());
  ASSERT_EQ(WatchToEnd(stack_.stub(), {run + "-first"}).results.size(), 1u);
  stack_.StopWorker();  // commits its offsets as it leaves

  const int fresh = stack_.AddGateway(absl::ZeroDuration());
  for (int i = 0; i < 2; ++i) {
    grpc::Status s = Issue(stack_.stub(fresh), coupon, absl::StrCat("u", i),
                           absl::StrCat(run, "-", i), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  }
  // Known at once, or after the next read of the offsets.
  v1::IssueResult got;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  do {
    grpc::Status s = Get(stack_.stub(fresh), run + "-1", true, &got);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(got.outcome(), v1::ISSUE_OUTCOME_QUEUED);
    if (got.has_position()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < until);
  ASSERT_TRUE(got.has_position()) << "no place after 30 s";
  EXPECT_EQ(got.position().requests_ahead(), 1);
  stack_.AddWorker();
  WatchOutcome decided = WatchToEnd(stack_.stub(fresh), {run + "-0", run + "-1"});
  EXPECT_EQ(decided.results.size(), 2u);
}

// wait_for_result through a sale: every call's answer is final, and it is
// the id's stored result.
TEST_F(QueuePositionTest, WaitForResultAnswersTheStoredResult) {
  stack_.AddGateway();
  stack_.AddWorker();
  stack_.WaitForAssignment();
  const int64_t coupon = stack_.CreateCoupon(3).coupon_id();
  std::vector<std::thread> callers;
  struct Answer {
    grpc::Status status;
    v1::IssueCouponResponse resp;
  };
  std::vector<Answer> answers(8);
  for (size_t i = 0; i < answers.size(); ++i) {
    callers.emplace_back([&, i] {
      answers[i].status = Issue(stack_.stub(), coupon, absl::StrCat("w", i),
                                absl::StrCat("wait-", coupon, "-", i),
                                &answers[i].resp, true, absl::Seconds(20));
    });
  }
  for (auto& t : callers) t.join();
  int issued = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i].status.ok()) << answers[i].status.error_message();
    const v1::IssueCouponResponse& a = answers[i].resp;
    ASSERT_THAT(a.outcome(),
                AnyOf(v1::ISSUE_OUTCOME_ISSUED, v1::ISSUE_OUTCOME_SOLD_OUT));
    if (a.outcome() == v1::ISSUE_OUTCOME_ISSUED) ++issued;
    v1::IssueResult stored;
    ASSERT_TRUE(Get(stack_.stub(), a.request_id(), false, &stored).ok());
    EXPECT_EQ(stored.outcome(), a.outcome()) << a.request_id();
    EXPECT_EQ(stored.user_coupon_id(), a.user_coupon_id()) << a.request_id();
  }
  EXPECT_EQ(issued, 3);
}

// The design's existing system: the final outcome comes with the coupon's
// queue rank at the decision. (Once the gateway knows the coupon is sold
// out, it answers SOLD_OUT itself, without a rank.)
TEST_F(QueuePositionTest, RedisAnswersTheQueueRank) {
  stack_.AddGateway(absl::Minutes(1), "redis");
  const int64_t coupon = stack_.CreateCoupon(3).coupon_id();
  for (int i = 0; i < 3; ++i) {
    v1::IssueCouponResponse resp;
    grpc::Status s = Issue(stack_.stub(), coupon, absl::StrCat("r", i),
                           absl::StrCat("rank-", coupon, "-", i), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.outcome(), v1::ISSUE_OUTCOME_ISSUED);
    ASSERT_TRUE(resp.has_position()) << i;
    EXPECT_EQ(resp.position().requests_ahead(), i);
    EXPECT_EQ(resp.position().scope(), v1::QueuePosition::SCOPE_COUPON);
  }
}

}  // namespace
}  // namespace coupon::testing
