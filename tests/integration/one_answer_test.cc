// One request id, one answer: whatever any gateway answers for a request id
// is what the store holds, or will hold, for it, on every gateway, after a
// restart past the result replay window, for answers the gateway gave itself,
// when two callers use one id at once, after the database dropped every
// connection, and when the producer's queue is full. Real gateways, worker,
// Kafka and PostgreSQL (issue 10).

#include <atomic>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"
#include "tests/testing/stack_env.h"

namespace coupon::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

grpc::Status Get(v1::CouponService::Stub& stub, const std::string& request_id,
                 v1::IssueResult* out, const std::string& user_id = "",
                 int64_t coupon_id = 0) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetIssueResultRequest req;
  req.set_request_id(request_id);
  req.set_user_id(user_id);
  req.set_coupon_id(coupon_id);
  return stub.GetIssueResult(&ctx, req, out);
}

// A request-id watch, read to its end, with the caller named.
WatchOutcome WatchAs(v1::CouponService::Stub& stub, const std::string& request_id,
                     const std::string& user_id, int64_t coupon_id,
                     absl::Duration deadline = absl::Seconds(30)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::WatchIssueResultsRequest req;
  req.add_request_ids(request_id);
  req.set_user_id(user_id);
  req.set_coupon_id(coupon_id);
  auto reader = stub.WatchIssueResults(&ctx, req);
  WatchOutcome out;
  v1::IssueResult r;
  while (reader->Read(&r)) out.results.push_back(r);
  out.status = reader->Finish();
  return out;
}

IssueCall IssueOne(v1::CouponService::Stub& stub, int64_t coupon,
                   const std::string& user, const std::string& request_id) {
  std::vector<IssueCall> calls = {{user, request_id, {}, {}}};
  IssueConcurrently(stub, coupon, calls);
  return calls[0];
}

// The request's final result: the answer, or its watch's when ACCEPTED.
v1::IssueResult Final(v1::CouponService::Stub& stub, int64_t coupon,
                      const std::string& user, const std::string& request_id) {
  IssueCall call = IssueOne(stub, coupon, user, request_id);
  EXPECT_TRUE(call.status.ok()) << request_id << ": " << call.status.error_message();
  v1::IssueResult r;
  if (call.response.outcome() != v1::ISSUE_OUTCOME_ACCEPTED) {
    r.set_request_id(request_id);
    r.set_outcome(call.response.outcome());
    r.set_user_coupon_id(call.response.user_coupon_id());
    return r;
  }
  WatchOutcome w = WatchToEnd(stub, {request_id});
  EXPECT_TRUE(w.status.ok()) << w.status.error_message();
  EXPECT_EQ(w.results.size(), 1u);
  return w.results.empty() ? r : w.results[0];
}

// Coupon `coupon` sold out, as gateway `gateway` learns it: a new user's
// request comes back SOLD_OUT (through the worker, or from the gateway's
// knowledge once it has it). Returns when the gateway answers it directly.
void LearnSoldOut(IssuanceStack& stack, int gateway, int64_t coupon,
                  const std::string& run) {
  const absl::Time until = absl::Now() + absl::Seconds(30);
  for (int i = 0;; ++i) {
    ASSERT_LT(absl::Now(), until) << "gateway " << gateway << " never learned that "
                                  << coupon << " is sold out";
    IssueCall c = IssueOne(stack.stub(gateway), coupon, absl::StrCat(run, "-late-", i),
                           absl::StrCat(run, "-late-", i));
    ASSERT_TRUE(c.status.ok()) << c.status.error_message();
    if (c.response.outcome() == v1::ISSUE_OUTCOME_SOLD_OUT) return;
    ASSERT_EQ(c.response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
    WatchOutcome w = WatchToEnd(stack.stub(gateway), {c.request_id});
    ASSERT_EQ(w.results.size(), 1u);
    ASSERT_EQ(w.results[0].outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);
  }
}

TEST(OneAnswerTest, AGatewayStartedPastItsReplayWindowAnswersWhatTheStoreHolds) {
  IssuanceStack stack;
  stack.AddGateway(absl::Seconds(1));
  stack.AddWorker();
  const int64_t coupon = stack.CreateCoupon(1, "the last one").coupon_id();
  const std::string run = absl::StrCat("restart-", coupon);
  const v1::IssueResult won = Final(stack.stub(0), coupon, "alice", run + "-st1");
  ASSERT_EQ(won.outcome(), v1::ISSUE_OUTCOME_ISSUED);

  // A gateway that starts after alice's result left its replay window, and
  // learns from bob's request that the coupon is gone.
  absl::SleepFor(absl::Seconds(2));
  const int fresh = stack.AddGateway(absl::Seconds(1));
  EXPECT_EQ(Final(stack.stub(fresh), coupon, "bob", run + "-b1").outcome(),
            v1::ISSUE_OUTCOME_SOLD_OUT);
  LearnSoldOut(stack, fresh, coupon, run);

  // Alice resends her request: it is the one that won.
  IssueCall resent = IssueOne(stack.stub(fresh), coupon, "alice", run + "-st1");
  ASSERT_TRUE(resent.status.ok()) << resent.status.error_message();
  EXPECT_EQ(resent.response.outcome(), v1::ISSUE_OUTCOME_ISSUED)
      << "the gateway contradicts the stored result of " << run << "-st1";
  EXPECT_EQ(resent.response.user_coupon_id(), won.user_coupon_id());
  WatchOutcome watched = WatchToEnd(stack.stub(fresh), {run + "-st1"});
  ASSERT_EQ(watched.results.size(), 1u);
  EXPECT_EQ(watched.results[0].outcome(), v1::ISSUE_OUTCOME_ISSUED);

  // A new request of hers: she holds a copy, the coupon being gone or not.
  IssueCall again = IssueOne(stack.stub(fresh), coupon, "alice", run + "-a2");
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_EQ(again.response.outcome(), v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  // ... and that answer is the id's, on the other gateway too.
  v1::IssueResult stored;
  ASSERT_TRUE(Get(stack.stub(0), run + "-a2", &stored).ok());
  EXPECT_EQ(stored.outcome(), v1::ISSUE_OUTCOME_ALREADY_ISSUED);
  EXPECT_EQ(stored.user_id(), "alice");
}

TEST(OneAnswerTest, AnAnswerAGatewayGaveItselfIsReadableOnEveryGateway) {
  IssuanceStack stack;
  stack.AddGateway();
  stack.AddGateway();
  stack.AddWorker();
  const int64_t coupon = stack.CreateCoupon(1).coupon_id();
  const std::string run = absl::StrCat("early-", coupon);
  ASSERT_EQ(Final(stack.stub(0), coupon, "x", run + "-x").outcome(),
            v1::ISSUE_OUTCOME_ISSUED);
  LearnSoldOut(stack, 0, coupon, run);

  // A watch on gateway 1 opened before gateway 0 answers the request itself.
  WatchOutcome early_watch;
  std::thread watcher([&] {
    early_watch = WatchToEnd(stack.stub(1), {run + "-e1"}, absl::Seconds(20));
  });
  // Joined however the test leaves.
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{watcher};
  absl::SleepFor(absl::Milliseconds(300));
  for (const char* id : {"-d1", "-e1"}) {
    IssueCall c = IssueOne(stack.stub(0), coupon, absl::StrCat("dave", id), run + id);
    ASSERT_TRUE(c.status.ok()) << c.status.error_message();
    ASSERT_EQ(c.response.outcome(), v1::ISSUE_OUTCOME_SOLD_OUT)
        << "gateway 0 did not answer from what it knows";
  }
  for (int g : {0, 1}) {
    v1::IssueResult r;
    grpc::Status s = Get(stack.stub(g), run + "-d1", &r);
    ASSERT_TRUE(s.ok()) << "gateway " << g << ": " << s.error_message();
    EXPECT_EQ(r.outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);
    EXPECT_EQ(r.user_id(), "dave-d1");
    WatchOutcome w = WatchToEnd(stack.stub(g), {run + "-d1"}, absl::Seconds(10));
    EXPECT_TRUE(w.status.ok()) << "gateway " << g << ": " << w.status.error_message();
    ASSERT_EQ(w.results.size(), 1u);
    EXPECT_EQ(w.results[0].outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);
  }
  watcher.join();
  EXPECT_TRUE(early_watch.status.ok())
      << "a watch on gateway 1 never heard gateway 0's answer: "
      << early_watch.status.error_message();
  ASSERT_EQ(early_watch.results.size(), 1u);
  EXPECT_EQ(early_watch.results[0].outcome(), v1::ISSUE_OUTCOME_SOLD_OUT);
}

// A coupon's stream on one gateway, read until `request_id`'s result comes
// or the deadline passes. Call Open() before anything the stream must see.
class CouponStream {
 public:
  CouponStream(v1::CouponService::Stub& stub, int64_t coupon, std::string request_id)
      : request_id_(std::move(request_id)) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(40)));
    v1::WatchIssueResultsRequest req;
    req.set_coupon_id(coupon);
    reader_ = stub.WatchIssueResults(&ctx_, req);
    // The stream is open once the server sent its headers.
    reader_->WaitForInitialMetadata();
  }
  // The result for the request id, if it came before the deadline.
  std::optional<v1::IssueResult> Await() {
    std::optional<v1::IssueResult> found;
    v1::IssueResult r;
    while (reader_->Read(&r)) {
      if (r.request_id() == request_id_) {
        found = r;
        ctx_.TryCancel();
      }
    }
    reader_->Finish();
    return found;
  }

 private:
  const std::string request_id_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::IssueResult>> reader_;
};

// A request queued through one gateway and answered by another from what it
// knows, before the worker decides it: the caller told ACCEPTED follows the
// coupon's stream, on any gateway, and must find the id's result there.
TEST(OneAnswerTest, EveryQueuedRequestsResultComesOnItsCouponsStreamOnEveryGateway) {
  IssuanceStack stack;
  stack.AddGateway();
  stack.AddGateway();
  // A sale that ends in three seconds, and no worker yet.
  grpc::ClientContext ctx;
  v1::CreateCouponRequest create;
  create.set_name("ends soon");
  create.set_total_quantity(10);
  const absl::Time ends = absl::Now() + absl::Seconds(3);
  create.mutable_ends_at()->set_seconds(absl::ToUnixSeconds(ends));
  v1::Coupon coupon;
  ASSERT_TRUE(stack.stub().CreateCoupon(&ctx, create, &coupon).ok());
  const std::string bob = absl::StrCat("streamed-", coupon.coupon_id());

  std::vector<std::unique_ptr<CouponStream>> streams;
  for (int g : {0, 1}) {
    streams.push_back(std::make_unique<CouponStream>(stack.stub(g), coupon.coupon_id(), bob));
  }
  // Queued through gateway 1 inside the window; resent through gateway 0
  // after it, which answers EXPIRED itself: the id's result from then on.
  IssueCall queued = IssueOne(stack.stub(1), coupon.coupon_id(), "bob", bob);
  ASSERT_TRUE(queued.status.ok()) << queued.status.error_message();
  ASSERT_EQ(queued.response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
  absl::SleepFor(ends - absl::Now() + absl::Seconds(1));
  IssueCall answered = IssueOne(stack.stub(0), coupon.coupon_id(), "bob", bob);
  ASSERT_TRUE(answered.status.ok()) << answered.status.error_message();
  ASSERT_EQ(answered.response.outcome(), v1::ISSUE_OUTCOME_EXPIRED);

  // The worker finds the id's stored result and sends it out again.
  stack.AddWorker();
  for (int g : {0, 1}) {
    std::optional<v1::IssueResult> r = streams[g]->Await();
    ASSERT_TRUE(r.has_value()) << "gateway " << g << ": bob's ACCEPTED request never came on coupon "
                               << coupon.coupon_id() << "'s stream";
    EXPECT_EQ(r->outcome(), v1::ISSUE_OUTCOME_EXPIRED) << "gateway " << g;
  }
}

TEST(OneAnswerTest, ANotStartedAnswerIsTheRequestsForGood) {
  IssuanceStack stack;
  stack.AddGateway();
  stack.AddGateway();
  stack.AddWorker();
  // A coupon that opens in two seconds.
  grpc::ClientContext ctx;
  v1::CreateCouponRequest create;
  create.set_name("opens soon");
  create.set_total_quantity(10);
  const absl::Time opens = absl::Now() + absl::Seconds(2);
  create.mutable_starts_at()->set_seconds(absl::ToUnixSeconds(opens) + 1);
  v1::Coupon coupon;
  ASSERT_TRUE(stack.stub().CreateCoupon(&ctx, create, &coupon).ok());
  const std::string id = absl::StrCat("early-bird-", coupon.coupon_id());

  IssueCall early = IssueOne(stack.stub(0), coupon.coupon_id(), "eve", id);
  ASSERT_TRUE(early.status.ok()) << early.status.error_message();
  ASSERT_EQ(early.response.outcome(), v1::ISSUE_OUTCOME_NOT_STARTED);
  v1::IssueResult r;
  ASSERT_TRUE(Get(stack.stub(1), id, &r).ok());
  EXPECT_EQ(r.outcome(), v1::ISSUE_OUTCOME_NOT_STARTED);

  // Once the sale is open, the same request is the same request: answered
  // NOT_STARTED, or (by a gateway that never saw the id) ACCEPTED and then
  // decided as the id's stored result.
  absl::SleepFor(opens - absl::Now() + absl::Seconds(2));
  for (int g : {0, 1}) {
    EXPECT_EQ(Final(stack.stub(g), coupon.coupon_id(), "eve", id).outcome(),
              v1::ISSUE_OUTCOME_NOT_STARTED)
        << "gateway " << g << " answered otherwise than the id's result";
  }
  // A new request of hers is decided as usual.
  EXPECT_EQ(Final(stack.stub(0), coupon.coupon_id(), "eve", id + "-2").outcome(),
            v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(QueryInt(stack.db(), "SELECT count(*) FROM user_coupons WHERE request_id = $1",
                     {id}),
            0);
}

TEST(OneAnswerTest, ARequestIdSentByTwoUsersAtOnceBelongsToOneOfThem) {
  IssuanceStack stack;
  stack.AddGateway();
  stack.AddGateway();
  stack.AddWorker();
  const int64_t coupon = stack.CreateCoupon(5).coupon_id();
  const std::string k1 = absl::StrCat("shared-", coupon);

  // The same id through two gateways at once: neither can know the other.
  IssueCall alice, bob;
  std::thread a([&] { alice = IssueOne(stack.stub(0), coupon, "alice", k1); });
  std::thread b([&] { bob = IssueOne(stack.stub(1), coupon, "bob", k1); });
  a.join();
  b.join();
  for (const IssueCall* c : {&alice, &bob}) {
    if (!c->status.ok()) {
      EXPECT_EQ(c->status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
          << c->status.error_message();
    } else {
      EXPECT_EQ(c->response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
    }
  }

  // Each caller reads the id as theirs: one holds it, the other is told it
  // is taken, and nothing of the first caller's result.
  std::map<std::string, v1::IssueResult> as;
  for (const std::string user : {"alice", "bob"}) {
    WatchOutcome w = WatchAs(stack.stub(user == "alice" ? 0 : 1), k1, user, coupon);
    ASSERT_TRUE(w.status.ok()) << user << ": " << w.status.error_message();
    ASSERT_EQ(w.results.size(), 1u) << user;
    as[user] = w.results[0];
    EXPECT_EQ(w.results[0].user_id(), user);
  }
  const bool alice_owns = as["alice"].outcome() == v1::ISSUE_OUTCOME_ISSUED;
  const std::string owner = alice_owns ? "alice" : "bob";
  const std::string other = alice_owns ? "bob" : "alice";
  EXPECT_EQ(as[owner].outcome(), v1::ISSUE_OUTCOME_ISSUED);
  EXPECT_EQ(as[other].outcome(), v1::ISSUE_OUTCOME_REQUEST_ID_REUSED);
  EXPECT_EQ(as[other].user_coupon_id(), 0);
  for (int g : {0, 1}) {
    v1::IssueResult r;
    ASSERT_TRUE(Get(stack.stub(g), k1, &r, other, coupon).ok());
    EXPECT_EQ(r.outcome(), v1::ISSUE_OUTCOME_REQUEST_ID_REUSED) << "gateway " << g;
    EXPECT_EQ(r.user_coupon_id(), 0);
    ASSERT_TRUE(Get(stack.stub(g), k1, &r, owner, coupon).ok());
    EXPECT_EQ(r.user_coupon_id(), as[owner].user_coupon_id());
    // The other caller resending the id is refused on every gateway.
    IssueCall resent = IssueOne(stack.stub(g), coupon, other, k1);
    EXPECT_EQ(resent.status.error_code(), grpc::StatusCode::ALREADY_EXISTS)
        << "gateway " << g << ": " << resent.status.error_message();
  }
  EXPECT_EQ(QueryInt(stack.db(), "SELECT count(*) FROM user_coupons WHERE coupon_id = $1",
                     {absl::StrCat(coupon)}),
            1);
  EXPECT_EQ(QueryInt(stack.db(),
                     "SELECT count(*) FROM user_coupons WHERE coupon_id = $1 AND user_id = $2",
                     {absl::StrCat(coupon), other}),
            0);
}

// What a restarted PostgreSQL does to every open connection: it closes it.
TEST(OneAnswerTest, EveryCallWorksRightAfterTheDatabaseDroppedItsConnections) {
  IssuanceStack stack;
  stack.AddGateway();
  stack.AddWorker();
  auto one_of_each = [&](const std::string& run) {
    std::vector<std::string> failures;
    auto check = [&](const char* what, const grpc::Status& s) {
      if (!s.ok()) failures.push_back(absl::StrCat(what, ": ", s.error_message()));
    };
    v1::Coupon coupon;
    {
      grpc::ClientContext ctx;
      v1::CreateCouponRequest req;
      req.set_name(run);
      req.set_total_quantity(5);
      check("CreateCoupon", stack.stub().CreateCoupon(&ctx, req, &coupon));
    }
    {
      grpc::ClientContext ctx;
      v1::GetCouponRequest req;
      req.set_coupon_id(coupon.coupon_id());
      v1::Coupon got;
      check("GetCoupon", stack.stub().GetCoupon(&ctx, req, &got));
    }
    IssueCall issued = IssueOne(stack.stub(), coupon.coupon_id(), run, run);
    check("IssueCoupon", issued.status);
    check("WatchIssueResults", WatchToEnd(stack.stub(), {run}).status);
    v1::IssueResult result;
    check("GetIssueResult", Get(stack.stub(), run, &result));
    {
      grpc::ClientContext ctx;
      v1::ListUserCouponsRequest req;
      req.set_user_id(run);
      v1::ListUserCouponsResponse list;
      check("ListUserCoupons", stack.stub().ListUserCoupons(&ctx, req, &list));
    }
    return failures;
  };
  // Fill the gateway's pool with connections, several times over.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(one_of_each(absl::StrCat("pg-warm-", getpid(), "-", i)), ::testing::IsEmpty());
  }
  // Every session of the service's role but ours, as a restart ends them.
  const int64_t ended = QueryInt(
      stack.db(),
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE usename = current_user AND pid <> pg_backend_pid() "
      "AND datname = current_database()");
  ASSERT_GT(ended, 0);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_THAT(one_of_each(absl::StrCat("pg-after-", getpid())), ::testing::IsEmpty())
      << "a call failed on a connection the server had closed";
}

TEST(OneAnswerTest, AFullProducerQueueIsUnavailableAtOnce) {
  IssuanceStack stack;
  // Room for one event, which waits 200 ms for company: the others find the
  // queue full.
  stack.AddGateway(absl::Minutes(1), "kafka", [](gateway::GatewayConfig& c) {
    c.kafka_max_queued_messages = 1;
    c.kafka_linger_ms = 200;
  });
  stack.AddWorker();
  const int64_t coupon = stack.CreateCoupon(100).coupon_id();
  std::vector<IssueCall> calls;
  for (int i = 0; i < 50; ++i) {
    calls.push_back({absl::StrCat("full-", coupon, "-", i),
                     absl::StrCat("full-", coupon, "-", i), {}, {}});
  }
  const absl::Time start = absl::Now();
  IssueConcurrently(stack.stub(), coupon, calls, absl::Seconds(30));
  int refused = 0;
  std::vector<std::string> accepted;
  for (const IssueCall& c : calls) {
    if (c.status.ok()) {
      EXPECT_EQ(c.response.outcome(), v1::ISSUE_OUTCOME_ACCEPTED);
      accepted.push_back(c.request_id);
      continue;
    }
    EXPECT_EQ(c.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << c.status.error_message();
    EXPECT_THAT(c.status.error_message(), HasSubstr("queue is full"));
    EXPECT_THAT(c.status.error_message(), HasSubstr("same request_id"));
    ++refused;
  }
  LOG(INFO) << "full queue: " << refused << " refused, " << accepted.size()
            << " accepted in " << absl::Now() - start;
  EXPECT_GT(refused, 0) << "every call waited for room instead of being refused";
  ASSERT_FALSE(accepted.empty());
  WatchOutcome w = WatchToEnd(stack.stub(), accepted);
  EXPECT_TRUE(w.status.ok()) << w.status.error_message();
  EXPECT_EQ(w.results.size(), accepted.size());
}

// A watch whose client does not read holds no unbounded queue on the
// gateway: its stream ends with RESOURCE_EXHAUSTED, saying to watch again by
// request ids, and the gateway goes on serving.
TEST(OneAnswerTest, AWatchThatDoesNotReadIsEndedNotBuffered) {
  IssuanceStack stack;
  // Every request goes to the worker, so every result reaches live watches;
  // 1 MiB of unsent results for all watches together.
  stack.AddGateway(absl::Minutes(1), "kafka", [](gateway::GatewayConfig& c) {
    c.precheck = false;
    c.watch_queue_mib = 1;
  });
  stack.AddWorker();
  const int64_t coupon = stack.CreateCoupon(1, "a flood").coupon_id();
  // A client that takes 16 KiB and then nothing: HTTP/2 flow control keeps
  // the rest on the gateway.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto slow = v1::CouponService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", stack.port()), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(3)));
  v1::WatchIssueResultsRequest by_coupon;
  by_coupon.set_coupon_id(coupon);
  auto reader = slow->WatchIssueResults(&ctx, by_coupon);
  reader->WaitForInitialMetadata();  // registered; it reads nothing now

  const std::string run = absl::StrCat("flood-", coupon);
  for (int wave = 0; wave < 8; ++wave) {
    std::vector<IssueCall> calls;
    for (int i = 0; i < 2000; ++i) {
      const std::string id = absl::StrCat(run, "-", wave, "-", i);
      calls.push_back({id, id, {}, {}});
    }
    IssueConcurrently(stack.stub(), coupon, calls);
    WatchOutcome w = WatchToEnd(stack.stub(), {calls.back().request_id});
    ASSERT_TRUE(w.status.ok()) << "the gateway stopped serving: " << w.status.error_message();
  }
  // Now read: what was sent before the end, then the end.
  v1::IssueResult r;
  size_t read = 0;
  while (reader->Read(&r)) ++read;
  grpc::Status status = reader->Finish();
  LOG(INFO) << "the slow watch read " << read << " of 16,000 results, then: "
            << status.error_message();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("request_ids"));
  EXPECT_LT(read, 16000u);
}

}  // namespace
}  // namespace coupon::testing
