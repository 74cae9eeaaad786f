#pragma once

// Where a gateway stores the answers it gives without the issuer, as their
// request ids' results, before anyone hears them. The PostgreSQL
// implementation is gateway/store/answer_recorder.h; unit tests use a fake.

#include <functional>

#include "absl/status/statusor.h"
#include "common/domain/domain.h"

namespace coupon::gateway {

class AnswerStore {
 public:
  // The request id's stored result once `proposed` was offered: `proposed`
  // itself (a SOLD_OUT possibly turned into ALREADY_ISSUED, when the user
  // holds a copy), or the result the id held already, which may belong to
  // another (coupon, user). UNAVAILABLE when nothing could be stored.
  using Done = std::function<void(absl::StatusOr<IssueResult>)>;

  virtual ~AnswerStore() = default;

  // Calls `done` exactly once, on this thread or another.
  virtual void Record(IssueResult proposed, Done done) = 0;
};

}  // namespace coupon::gateway
