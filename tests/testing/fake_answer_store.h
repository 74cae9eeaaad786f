#pragma once

// An in-memory AnswerStore for unit tests: the first result of a request id
// stands, as `INSERT ... ON CONFLICT DO NOTHING` makes it in PostgreSQL, and a
// SOLD_OUT for a user it knows as a holder becomes ALREADY_ISSUED. The
// PostgreSQL one is tested against the real server (tests/integration).

#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "gateway/issue/answer_store.h"

namespace coupon::testing {

class FakeAnswerStore : public gateway::AnswerStore {
 public:
  void Record(IssueResult proposed, Done done) override {
    absl::StatusOr<IssueResult> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++offered_;
      if (!status_.ok()) {
        out = status_;
      } else if (auto it = stored_.find(proposed.request_id); it != stored_.end()) {
        out = it->second;
      } else {
        if (proposed.outcome == Outcome::kSoldOut &&
            holders_.count({proposed.coupon_id, proposed.user_id})) {
          proposed.outcome = Outcome::kAlreadyIssued;
        }
        stored_.emplace(proposed.request_id, proposed);
        out = proposed;
      }
    }
    done(std::move(out));
  }

  // What the store holds already, as the worker stored it.
  void Hold(const IssueResult& result) {
    std::lock_guard<std::mutex> lock(mu_);
    stored_.emplace(result.request_id, result);
    if (result.outcome == Outcome::kIssued) {
      holders_.insert({result.coupon_id, result.user_id});
    }
  }
  // Every Record fails with `status` (a database that is down).
  void set_status(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(status);
  }
  std::optional<IssueResult> Find(const std::string& request_id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stored_.find(request_id);
    if (it == stored_.end()) return std::nullopt;
    return it->second;
  }
  int offered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return offered_;
  }

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, IssueResult> stored_;
  std::set<std::pair<int64_t, std::string>> holders_;
  absl::Status status_;
  int offered_ = 0;
};

}  // namespace coupon::testing
