#pragma once

// The PostgreSQL AnswerStore. Stores the answers a Kafka-mode gateway gives
// without the worker (SOLD_OUT
// to a sold-out coupon's storm, ALREADY_ISSUED, NOT_STARTED, EXPIRED) as their
// request ids' results in `issue_results`, before the caller hears them.
// The request_id primary key makes the store the judge:
// an id's first result stands, whoever stored it (the worker, this gateway or
// another), and the caller is told what the id then holds. So an early answer
// is the id's answer on every gateway, after any restart, and a reused id is
// refused. A SOLD_OUT is turned into ALREADY_ISSUED in the same statement when
// the user holds a copy, so the gateway needs no list of holders to be right.
// That probe of user_coupons is a sixth of the statement's cost, so it is
// skipped for a user the gateway knows holds no copy: after a batch that
// needed it, the recorder reads the coupon's every copy once (a sold-out
// coupon gains none) and hands them to the gateway's cache (learn_copies).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/domain/domain.h"
#include "common/pg/pg.h"
#include "common/service/group_commit.h"
#include "gateway/issue/answer_store.h"

namespace coupon::gateway {

struct RecorderConfig {
  std::string pg_dsn;
  pg::SessionSettings session;
  absl::Duration connect_timeout = absl::Seconds(3);
  // Answers waiting to be stored at most; past it Record fails at once.
  size_t max_waiting = 50000;
  // Answers in one statement at most.
  size_t max_batch = 2000;
  // How long the first answer of a round waits for others to share its
  // commit (zero: it takes what waits, and goes). A commit costs the
  // database about as much CPU as a few dozen rows of it.
  absl::Duration batch_wait = absl::Milliseconds(2);
  // Whether the user certainly holds no copy of the coupon (unset: never
  // known; every SOLD_OUT is then checked against user_coupons).
  std::function<bool(int64_t coupon_id, const std::string& user_id)> knows_no_copy;
  // Every copy of a sold-out coupon whose SOLD_OUT answers needed the check,
  // read after their batch in the snapshot that finds its stock gone; at most
  // once per copies_retry per coupon, and only for coupons of max_copies
  // copies at most. Unset: never read.
  std::function<void(int64_t coupon_id, const std::vector<UserCouponRow>& copies)>
      learn_copies;
  int64_t max_copies = 100000;
  absl::Duration copies_retry = absl::Seconds(10);
};

/// Many answers share one statement and one commit (service::GroupCommit):
/// each round takes what arrived within `batch_wait` of its first answer, or
/// max_batch, and what arrived while the round before was stored. Owns one
/// thread and one connection, from the constructor until the destructor,
/// which fails what still waits with UNAVAILABLE. Record may be called from any thread; `done` runs once, on
/// the recorder's thread, or on the caller's when refused at once.
class AnswerRecorder final : public AnswerStore {
 public:
  explicit AnswerRecorder(RecorderConfig config);
  ~AnswerRecorder() override;

  void Record(IssueResult proposed, Done done) override;

 private:
  struct Item {
    IssueResult proposed;
    Done done;
    absl::StatusOr<IssueResult> stored = absl::UnknownError("not stored");
  };

  // One round: stores it (one try more on failure), answers each item.
  void Handle(std::vector<Item>& batch, bool stopping);
  // Stores the batch's answers and fills each item's `stored`.
  absl::Status Store(std::vector<Item>& batch);
  // Reads the copies of the coupons in copies_wanted_ (see learn_copies).
  void LearnCopies();

  const RecorderConfig config_;
  // The rounds' thread only:
  std::unique_ptr<pg::Connection> conn_;
  absl::Duration backoff_ = absl::Milliseconds(50);
  // Whether the last batch found an id that held a result: the next one is
  // stored with ON CONFLICT at once (see kStoreNew in the .cc).
  bool taken_seen_ = false;
  // Coupons whose SOLD_OUT answers the last batch checked in the store, and
  // when each coupon's copies were last read.
  absl::flat_hash_set<int64_t> copies_wanted_;
  absl::flat_hash_map<int64_t, absl::Time> copies_read_at_;
  std::unique_ptr<service::GroupCommit<Item>> rounds_;  // last: its thread uses the above
};

}  // namespace coupon::gateway
