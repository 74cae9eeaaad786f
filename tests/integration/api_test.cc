// The public API through a real gateway: bad input of every field, results
// for watches opened after the fact and on another gateway, reads.

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/raw_message.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new IssuanceStack();
    stack_->AddGateway();
    stack_->AddWorker();
  }
  static void TearDownTestSuite() { delete stack_; }

  template <typename Req, typename Resp, typename Method>
  grpc::Status Call(Method method, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return (stack_->stub().*method)(&ctx, req, resp);
  }

  // Issues one request and waits for its final result on a stream.
  v1::IssueResult IssueAndWait(int64_t coupon_id, const std::string& user,
                               const std::string& request_id) {
    std::vector<IssueCall> calls = {{user, request_id, {}, {}}};
    IssueConcurrently(stack_->stub(), coupon_id, calls);
    EXPECT_TRUE(calls[0].status.ok()) << calls[0].status.error_message();
    EXPECT_EQ(calls[0].response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
    WatchOutcome w = WatchToEnd(stack_->stub(), {request_id});
    EXPECT_TRUE(w.status.ok()) << w.status.error_message();
    EXPECT_EQ(w.results.size(), 1u);
    return w.results.empty() ? v1::IssueResult() : w.results[0];
  }

  static IssuanceStack* stack_;
};

IssuanceStack* ApiTest::stack_ = nullptr;

#define EXPECT_INVALID(status, field)                                   \
  do {                                                                  \
    grpc::Status _s = (status);                                         \
    EXPECT_EQ(_s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)      \
        << _s.error_message();                                          \
    EXPECT_THAT(_s.error_message(), HasSubstr(field));                  \
  } while (false)

TEST_F(ApiTest, CreateCouponRejectsEachBadField) {
  using S = v1::CouponService::Stub;
  v1::Coupon out;
  v1::CreateCouponRequest req;
  req.set_name("ok");
  req.set_total_quantity(10);

  auto bad = req;
  bad.set_name("");
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "name");
  bad.set_name(std::string(201, 'x'));
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "name");
  bad.set_name("line\nbreak");
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "name");
  for (int64_t q : {0LL, -1LL, 1'000'000'001LL}) {
    bad = req;
    bad.set_total_quantity(q);
    EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "total_quantity");
  }
  bad = req;
  bad.mutable_starts_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 7200);
  bad.mutable_ends_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "ends_at");
  bad = req;
  bad.mutable_ends_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) - 10);
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "ends_at");
  // Outside what a Timestamp may hold (years 1 to 9999), or negative nanos.
  bad = req;
  bad.mutable_starts_at()->set_seconds(int64_t{1} << 62);
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "starts_at: ");
  bad = req;
  bad.mutable_ends_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  bad.mutable_ends_at()->set_nanos(-1);
  EXPECT_INVALID((Call(&S::CreateCoupon, bad, &out)), "ends_at: nanos");
  ASSERT_TRUE(Call(&S::CreateCoupon, req, &out).ok());
  EXPECT_GT(out.coupon_id(), 0);
  EXPECT_EQ(out.remaining_quantity(), 10);
}

TEST_F(ApiTest, IssueCouponRejectsEachBadField) {
  using S = v1::CouponService::Stub;
  const int64_t coupon = stack_->CreateCoupon(5).coupon_id();
  v1::IssueCouponResponse out;
  v1::IssueCouponRequest req;
  req.set_coupon_id(coupon);
  req.set_user_id("u1");

  auto bad = req;
  bad.set_coupon_id(0);
  EXPECT_INVALID((Call(&S::IssueCoupon, bad, &out)), "coupon_id");
  bad.set_coupon_id(-3);
  EXPECT_INVALID((Call(&S::IssueCoupon, bad, &out)), "coupon_id");
  for (const std::string& user :
       {std::string(), std::string(129, 'u'), std::string("tab\there")}) {
    bad = req;
    bad.set_user_id(user);
    EXPECT_INVALID((Call(&S::IssueCoupon, bad, &out)), "user_id");
  }
  for (const std::string& id : {std::string(129, 'r'), std::string("spa ce"),
                                std::string("slash/no")}) {
    bad = req;
    bad.set_request_id(id);
    EXPECT_INVALID((Call(&S::IssueCoupon, bad, &out)), "request_id");
  }
  bad = req;
  bad.set_coupon_id(coupon + 1'000'000);
  grpc::Status missing = Call(&S::IssueCoupon, bad, &out);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(missing.error_message(), StartsWith("coupon_id"));
}

TEST_F(ApiTest, ReadsRejectBadFieldsAndUnknownIds) {
  using S = v1::CouponService::Stub;
  v1::Coupon coupon;
  v1::GetCouponRequest get;
  EXPECT_INVALID((Call(&S::GetCoupon, get, &coupon)), "coupon_id");
  get.set_coupon_id(1LL << 50);
  EXPECT_EQ(Call(&S::GetCoupon, get, &coupon).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::IssueResult result;
  v1::GetIssueResultRequest get_result;
  EXPECT_INVALID((Call(&S::GetIssueResult, get_result, &result)), "request_id");
  get_result.set_request_id("never-sent-anywhere");
  EXPECT_EQ(Call(&S::GetIssueResult, get_result, &result).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::ListUserCouponsResponse list;
  v1::ListUserCouponsRequest list_req;
  EXPECT_INVALID((Call(&S::ListUserCoupons, list_req, &list)), "user_id");
  list_req.set_user_id("u");
  list_req.set_page_size(1001);
  EXPECT_INVALID((Call(&S::ListUserCoupons, list_req, &list)), "page_size");
  list_req.set_page_size(-1);
  EXPECT_INVALID((Call(&S::ListUserCoupons, list_req, &list)), "page_size");
  list_req.set_page_size(0);
  list_req.set_after_user_coupon_id(-1);
  EXPECT_INVALID((Call(&S::ListUserCoupons, list_req, &list)),
                 "after_user_coupon_id");
  list_req.set_after_user_coupon_id(0);
  list_req.set_user_id(std::string(129, 'u'));
  EXPECT_INVALID((Call(&S::ListUserCoupons, list_req, &list)), "user_id");

  get_result.set_request_id("no spaces");
  EXPECT_INVALID((Call(&S::GetIssueResult, get_result, &result)), "request_id");
  get_result.set_request_id(std::string(129, 'r'));
  EXPECT_INVALID((Call(&S::GetIssueResult, get_result, &result)), "request_id");
  get.set_coupon_id(-1);
  EXPECT_INVALID((Call(&S::GetCoupon, get, &coupon)), "coupon_id");
}

TEST_F(ApiTest, WatchRejectsBadSelectors) {
  auto watch = [](const v1::WatchIssueResultsRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto reader = stack_->stub().WatchIssueResults(&ctx, req);
    v1::IssueResult r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  };
  v1::WatchIssueResultsRequest none;
  EXPECT_INVALID(watch(none), "exactly one");
  v1::WatchIssueResultsRequest two;
  two.set_user_id("u");
  two.set_coupon_id(1);
  EXPECT_INVALID(watch(two), "exactly one");
  v1::WatchIssueResultsRequest too_many;
  for (int i = 0; i < 1001; ++i) too_many.add_request_ids(absl::StrCat("r", i));
  EXPECT_INVALID(watch(too_many), "request_ids");
  v1::WatchIssueResultsRequest bad_id;
  bad_id.add_request_ids("ok");
  bad_id.add_request_ids("not ok");
  EXPECT_INVALID(watch(bad_id), "request_ids[1]");
  v1::WatchIssueResultsRequest bad_coupon;
  bad_coupon.set_coupon_id(-1);
  EXPECT_INVALID(watch(bad_coupon), "coupon_id");
  v1::WatchIssueResultsRequest bad_user;
  bad_user.set_user_id("bell\a");
  EXPECT_INVALID(watch(bad_user), "user_id");
  bad_user.set_user_id(std::string(129, 'u'));
  EXPECT_INVALID(watch(bad_user), "user_id");
}

// Sends `bytes` as the request of CouponService.`method` exactly as given, to
// send what the typed stub refuses to build (invalid UTF-8 in a string field,
// a field of the wrong wire type, a torn message). Reads any responses to the
// end and returns the final status.
grpc::Status RawCall(int port, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/coupon.v1.CouponService/" + method, &cq);
  auto next = [&cq] {
    void* tag;
    bool ok = false;
    CHECK(cq.Next(&tag, &ok));
    return ok;
  };
  call->StartCall(nullptr);
  next();
  grpc::Slice slice(bytes);
  call->WriteLast(grpc::ByteBuffer(&slice, 1), grpc::WriteOptions(), nullptr);
  next();
  grpc::ByteBuffer response;
  do {
    call->Read(&response, nullptr);
  } while (next());
  grpc::Status status;
  call->Finish(&status, nullptr);
  next();
  return status;
}

// Protobuf refuses to parse a proto3 string field holding invalid UTF-8, so
// these requests never reach a handler's own checks; the gateway parses them
// itself and names the field.
TEST_F(ApiTest, NonUtf8StringFieldsAreInvalidArgumentNamingTheField) {
  const int port = stack_->port();
  const std::string bad = "ok\xff";
  EXPECT_INVALID(RawCall(port, "CreateCoupon",
                         RawMessage().Bytes(1, bad).Int(2, 10).Serialize()),
                 "name: is not valid UTF-8");
  EXPECT_INVALID(
      RawCall(port, "IssueCoupon",
              RawMessage().Int(1, 1).Bytes(2, "\xc3\x28").Serialize()),
      "user_id: is not valid UTF-8");
  EXPECT_INVALID(
      RawCall(port, "IssueCoupon",
              RawMessage().Int(1, 1).Bytes(2, "u").Bytes(3, bad).Serialize()),
      "request_id: is not valid UTF-8");
  EXPECT_INVALID(
      RawCall(port, "GetIssueResult", RawMessage().Bytes(1, bad).Serialize()),
      "request_id: is not valid UTF-8");
  EXPECT_INVALID(
      RawCall(port, "ListUserCoupons",
              RawMessage().Bytes(1, "\xed\xa0\x80").Serialize()),  // surrogate
      "user_id: is not valid UTF-8");
  EXPECT_INVALID(RawCall(port, "WatchIssueResults",
                         RawMessage().Bytes(1, "ok").Bytes(1, bad).Serialize()),
                 "request_ids[1]: is not valid UTF-8");
  EXPECT_INVALID(RawCall(port, "WatchIssueResults",
                         RawMessage().Bytes(2, bad).Serialize()),
                 "user_id: is not valid UTF-8");
}

TEST_F(ApiTest, WrongWireTypesAndTornMessagesAreInvalidArgument) {
  const int port = stack_->port();
  // coupon_id as a string, user_id as a number.
  EXPECT_INVALID(RawCall(port, "IssueCoupon",
                         RawMessage().Bytes(1, "7").Bytes(2, "u").Serialize()),
                 "coupon_id: has the wrong wire type");
  EXPECT_INVALID(RawCall(port, "IssueCoupon",
                         RawMessage().Int(1, 7).Int(2, 5).Serialize()),
                 "user_id: has the wrong wire type");
  EXPECT_INVALID(RawCall(port, "ListUserCoupons",
                         RawMessage().Bytes(1, "u").Bytes(2, "x").Serialize()),
                 "page_size: has the wrong wire type");
  // A length that runs past the end of the message.
  EXPECT_INVALID(RawCall(port, "GetCoupon",
                         std::string("\x0a\x05"
                                     "ab")),
                 "coupon.v1.GetCouponRequest");
  // A well-formed request reaches the handler, also with a field this
  // gateway does not know (a newer client's).
  for (const std::string& bytes :
       {RawMessage().Int(1, 1LL << 50).Serialize(),
        RawMessage().Int(1, 1LL << 50).Bytes(99, "new").Serialize()}) {
    grpc::Status s = RawCall(port, "GetCoupon", bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  }
}

TEST_F(ApiTest, WatchOpenedAfterTheResultStillGetsIt) {
  const int64_t coupon = stack_->CreateCoupon(1).coupon_id();
  const std::string id = absl::StrCat("late-watch-", coupon);
  v1::IssueResult first = IssueAndWait(coupon, "late-user", id);
  ASSERT_EQ(first.outcome(), v1::ISSUE_OUTCOME_ISSUED);

  WatchOutcome again = WatchToEnd(stack_->stub(), {id});
  ASSERT_TRUE(again.status.ok());
  ASSERT_EQ(again.results.size(), 1u);
  EXPECT_EQ(again.results[0].SerializeAsString(), first.SerializeAsString());

  // A gateway that never saw the result on the topic (its replay window is
  // zero) answers from the database: a client that lost its gateway loses
  // nothing by reconnecting elsewhere.
  int fresh = stack_->AddGateway(absl::ZeroDuration());
  WatchOutcome elsewhere = WatchToEnd(stack_->stub(fresh), {id});
  ASSERT_TRUE(elsewhere.status.ok()) << elsewhere.status.error_message();
  ASSERT_EQ(elsewhere.results.size(), 1u);
  EXPECT_EQ(elsewhere.results[0].SerializeAsString(), first.SerializeAsString());

  grpc::ClientContext ctx;
  v1::GetIssueResultRequest get;
  get.set_request_id(id);
  v1::IssueResult polled;
  ASSERT_TRUE(stack_->stub(fresh).GetIssueResult(&ctx, get, &polled).ok());
  EXPECT_EQ(polled.SerializeAsString(), first.SerializeAsString());
}

TEST_F(ApiTest, ListUserCouponsPagesThroughAUsersCoupons) {
  const std::string user = absl::StrCat("lister-", absl::ToUnixNanos(absl::Now()));
  std::vector<int64_t> coupons;
  for (int i = 0; i < 3; ++i) {
    coupons.push_back(stack_->CreateCoupon(1).coupon_id());
    ASSERT_EQ(IssueAndWait(coupons.back(), user, absl::StrCat(user, "-", i)).outcome(),
              v1::ISSUE_OUTCOME_ISSUED);
  }
  v1::ListUserCouponsRequest req;
  req.set_user_id(user);
  req.set_page_size(2);
  v1::ListUserCouponsResponse page1, page2;
  using S = v1::CouponService::Stub;
  ASSERT_TRUE(Call(&S::ListUserCoupons, req, &page1).ok());
  ASSERT_EQ(page1.coupons_size(), 2);
  EXPECT_EQ(page1.coupons(0).coupon_id(), coupons[0]);
  req.set_after_user_coupon_id(page1.next_after_user_coupon_id());
  ASSERT_TRUE(Call(&S::ListUserCoupons, req, &page2).ok());
  ASSERT_EQ(page2.coupons_size(), 1);
  EXPECT_EQ(page2.coupons(0).coupon_id(), coupons[2]);
  EXPECT_EQ(page2.next_after_user_coupon_id(), 0);
}

TEST_F(ApiTest, CouponOutsideItsWindowIsNotIssued) {
  using S = v1::CouponService::Stub;
  v1::CreateCouponRequest req;
  req.set_name("later");
  req.set_total_quantity(5);
  req.mutable_starts_at()->set_seconds(absl::ToUnixSeconds(absl::Now()) + 3600);
  v1::Coupon later;
  ASSERT_TRUE(Call(&S::CreateCoupon, req, &later).ok());
  v1::IssueCouponRequest issue;
  issue.set_coupon_id(later.coupon_id());
  issue.set_user_id("early-bird");
  v1::IssueCouponResponse out;
  ASSERT_TRUE(Call(&S::IssueCoupon, issue, &out).ok());
  EXPECT_EQ(out.outcome(), v1::ISSUE_OUTCOME_NOT_STARTED);
  EXPECT_FALSE(out.request_id().empty());
}

TEST_F(ApiTest, ShutdownEndsOpenWatchesWithUnavailable) {
  // A gateway of its own, so stopping it leaves the suite's gateway alone.
  const int gw = stack_->AddGateway();
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchIssueResultsRequest req;
  req.add_request_ids("never-decided-anywhere");
  auto reader = stack_->stub(gw).WatchIssueResults(&ctx, req);
  reader->WaitForInitialMetadata();
  const absl::Time start = absl::Now();
  std::thread stopper([&] { stack_->StopGateway(gw); });
  v1::IssueResult r;
  EXPECT_FALSE(reader->Read(&r));
  grpc::Status s = reader->Finish();
  stopper.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("another gateway"));
  LOG(INFO) << "watch ended " << absl::Now() - start << " after the shutdown began";
}

TEST_F(ApiTest, SecondGatewayOnABusyPortFailsToStart) {
  gateway::GatewayConfig config;
  config.listen = absl::StrCat("127.0.0.1:", stack_->port());
  // This stack's servers and topics, not the defaults (another stack's).
  config.kafka_brokers = KafkaBrokers();
  config.pg_dsn = PgDsn();
  config.request_topic = TestKafka().request_topic;
  config.result_topic = TestKafka().result_topic;
  auto second = gateway::GatewayServer::Start(config);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("cannot listen"));
}

}  // namespace
}  // namespace coupon::testing
