#include "bench/flashsale/verify.h"

#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/pg/pg.h"

namespace coupon::bench {
namespace {

/// Violations grouped by kind with a few examples each. One thread.
class Findings {
 public:
  void Add(const std::string& kind, std::string example) {
    Kind& k = kinds_[kind];
    if (k.examples.size() < 3) k.examples.push_back(std::move(example));
    ++k.count;
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    for (const auto& [kind, k] : kinds_) {
      lines.push_back(absl::StrCat(kind, ": ", k.count, " (e.g. ",
                                   absl::StrJoin(k.examples, "; "), ")"));
    }
    return lines;
  }

 private:
  struct Kind {
    int64_t count = 0;
    std::vector<std::string> examples;
  };
  std::map<std::string, Kind> kinds_;
};

bool IsFinal(int outcome) {
  return outcome == v1::ISSUE_OUTCOME_ISSUED ||
         outcome == v1::ISSUE_OUTCOME_SOLD_OUT ||
         outcome == v1::ISSUE_OUTCOME_ALREADY_ISSUED ||
         outcome == v1::ISSUE_OUTCOME_NOT_STARTED ||
         outcome == v1::ISSUE_OUTCOME_EXPIRED;
}

// A result seen by the client against the issue_results row: the same
// outcome and copy, or a description of both for the violation.
std::optional<std::string> DiffersFromRow(const DbSnapshot::Result& row,
                                          absl::string_view seen_as,
                                          int outcome, int64_t user_coupon_id) {
  if (row.outcome == outcome && row.user_coupon_id == user_coupon_id) {
    return std::nullopt;
  }
  return absl::StrCat(seen_as, " ", OutcomeName(outcome), "/", user_coupon_id,
                      ", db ", OutcomeName(row.outcome), "/",
                      row.user_coupon_id);
}

}  // namespace

absl::StatusOr<DbSnapshot> ReadSnapshot(const std::string& pg_dsn,
                                        const std::vector<int64_t>& coupon_ids) {
  auto conn = pg::Connection::Connect(pg_dsn, absl::Seconds(5));
  if (!conn.ok()) return conn.status();
  const std::vector<pg::Param> ids = {pg::Int64Array(coupon_ids)};
  DbSnapshot db;

  auto coupons = (*conn)->Exec(
      "SELECT c.coupon_id, c.total_quantity, c.remaining_quantity, "
      "       count(u.user_coupon_id), count(DISTINCT u.user_id) "
      "FROM coupons c LEFT JOIN user_coupons u USING (coupon_id) "
      "WHERE c.coupon_id = ANY($1::bigint[]) "
      "GROUP BY c.coupon_id, c.total_quantity, c.remaining_quantity",
      ids);
  if (!coupons.ok()) return coupons.status();
  for (int r = 0; r < coupons->rows(); ++r) {
    DbSnapshot::Coupon& c = db.coupons[coupons->GetInt64(r, 0)];
    c.total_quantity = coupons->GetInt64(r, 1);
    c.remaining_quantity = coupons->GetInt64(r, 2);
    c.issued_rows = coupons->GetInt64(r, 3);
    c.distinct_users = coupons->GetInt64(r, 4);
  }

  auto holders = (*conn)->Exec(
      "SELECT coupon_id, user_id, request_id, user_coupon_id FROM user_coupons "
      "WHERE coupon_id = ANY($1::bigint[])",
      ids);
  if (!holders.ok()) return holders.status();
  db.holders.reserve(holders->rows());
  for (int r = 0; r < holders->rows(); ++r) {
    db.holders.push_back({holders->GetInt64(r, 0), std::string(holders->Get(r, 1)),
                          std::string(holders->Get(r, 2)),
                          holders->GetInt64(r, 3)});
  }

  auto results = (*conn)->Exec(
      "SELECT request_id, coupon_id, outcome, coalesce(user_coupon_id, 0) "
      "FROM issue_results WHERE coupon_id = ANY($1::bigint[])",
      ids);
  if (!results.ok()) return results.status();
  db.results.reserve(results->rows());
  for (int r = 0; r < results->rows(); ++r) {
    v1::IssueOutcome outcome = v1::ISSUE_OUTCOME_UNSPECIFIED;
    v1::IssueOutcome_Parse(absl::StrCat("ISSUE_OUTCOME_", results->Get(r, 2)),
                           &outcome);
    db.results[std::string(results->Get(r, 0))] = {
        results->GetInt64(r, 1), outcome, results->GetInt64(r, 3)};
  }
  return db;
}

Verification Compare(const Plan& plan, const Ledger& ledger, int64_t stock,
                     const DbSnapshot& db, bool decided_at_gateway) {
  Verification v;
  Findings bad;
  const size_t coupons = plan.coupon_ids.size();

  absl::flat_hash_set<std::pair<int64_t, std::string>> holds;  // (coupon, user)
  for (const DbSnapshot::Holder& h : db.holders) holds.insert({h.coupon_id, h.user_id});

  std::vector<bool> user_answered(plan.users, false);
  std::vector<bool> sold_out_seen(coupons, false);
  absl::flat_hash_set<std::string> issued_seen;

  for (size_t c = 0; c < plan.calls(); ++c) {
    const Ledger::CallEntry call = ledger.call(c);
    const size_t n = plan.call_request[c];
    ++v.checks;
    if (call.answered_ns == 0) {
      bad.Add("call never answered", plan.RequestId(n));
      continue;
    }
    if (call.error_code != 0) continue;
    user_answered[plan.user_of[n]] = true;
    if (!IsFinal(call.answer)) continue;
    // A resent request id must get the one result the request has.
    const Ledger::Entry e = ledger.entry(n);
    ++v.checks;
    if (e.via != Via::kNone && e.result != call.answer) {
      bad.Add("a call's final answer differs from its request's result",
              absl::StrCat(plan.RequestId(n), " answered ", OutcomeName(call.answer),
                           ", result ", OutcomeName(e.result)));
    }
  }

  for (size_t n = 0; n < plan.size(); ++n) {
    const Ledger::Entry e = ledger.entry(n);
    const std::string id = plan.RequestId(n);
    const size_t c = plan.CouponIndexOf(n);
    const std::string user = Plan::UserId(plan.user_of[n]);
    auto row = db.results.find(id);
    const bool has_row = row != db.results.end();
    const bool has_result = e.via != Via::kNone;

    if (e.answered_ns == 0) continue;  // reported per call above
    bool sold_out_to_holder = false;
    for (int outcome : {e.error_code == 0 ? e.answer : 0, has_result ? e.result : 0}) {
      if (outcome == v1::ISSUE_OUTCOME_SOLD_OUT) {
        sold_out_seen[c] = true;
        // A holder's copy was decided before the stock ran out, in the same
        // partition: whoever knows the coupon sold out knows she holds one.
        ++v.checks;
        if (!sold_out_to_holder && holds.contains({plan.coupon_ids[c], user})) {
          sold_out_to_holder = true;
          ++v.sold_out_to_holders;
          bad.Add("SOLD_OUT for a user holding a copy", id);
        }
      }
      if (outcome == v1::ISSUE_OUTCOME_ISSUED) issued_seen.insert(id);
      if (outcome == v1::ISSUE_OUTCOME_ALREADY_ISSUED) {
        ++v.checks;
        if (!holds.contains({plan.coupon_ids[c], user})) {
          bad.Add("ALREADY_ISSUED for a user holding no copy", id);
        }
      }
    }
    if (has_result) {
      ++v.checks;
      if (!IsFinal(e.result)) {
        bad.Add("result with a non-final outcome",
                absl::StrCat(id, " ", OutcomeName(e.result)));
      }
      ++v.checks;
      if (!has_row) {
        // The Redis issuer stores only issued copies in PostgreSQL.
        if (!decided_at_gateway || e.result == v1::ISSUE_OUTCOME_ISSUED) {
          bad.Add("result on a stream but no issue_results row", id);
        }
      } else if (auto diff = DiffersFromRow(row->second, "stream", e.result,
                                            e.result_user_coupon_id)) {
        bad.Add("stream result differs from issue_results",
                absl::StrCat(id, " ", *diff));
      }
    }

    if (e.error_code != 0) {
      // "May or may not be queued": either is fine, a result must agree.
      if (has_row) ++v.errored_but_decided;
      continue;
    }
    if (e.answer == v1::ISSUE_OUTCOME_ACCEPTED) {
      v.checks += 2;
      if (!has_result) bad.Add("ACCEPTED without a result on any stream", id);
      if (!has_row) {
        ++v.accepted_lost;
        bad.Add("ACCEPTED without an issue_results row", id);
      }
      continue;
    }
    if (decided_at_gateway) {
      v.checks += 3;
      if (!IsFinal(e.answer)) {
        bad.Add("unexpected answer at the gateway",
                absl::StrCat(id, " ", OutcomeName(e.answer)));
      }
      if (has_result && e.result != e.answer) {
        bad.Add("stream result differs from the answer",
                absl::StrCat(id, " answered ", OutcomeName(e.answer), ", streamed ",
                             OutcomeName(e.result)));
      }
      if (has_row != (e.answer == v1::ISSUE_OUTCOME_ISSUED)) {
        bad.Add("issue_results row for a request not answered ISSUED, or none for one",
                absl::StrCat(id, " answered ", OutcomeName(e.answer)));
      }
      continue;
    }
    if (has_row) {
      // A worker decided it, yet no call was answered ACCEPTED: the call that
      // queued it lost its answer (its gateway died after producing the
      // event), and a resend got the decided result back. It must be that
      // result.
      ++v.checks;
      if (auto diff = DiffersFromRow(row->second, "answered", e.answer,
                                     e.answer_user_coupon_id)) {
        bad.Add("a resent request's answer differs from its decided result",
                absl::StrCat(id, " ", *diff));
      }
      continue;
    }
    ++v.checks;
    if (e.answer != v1::ISSUE_OUTCOME_SOLD_OUT &&
        e.answer != v1::ISSUE_OUTCOME_ALREADY_ISSUED) {
      bad.Add("unexpected answer at the gateway",
              absl::StrCat(id, " ", OutcomeName(e.answer)));
    }
    ++v.checks;
    if (has_row || has_result) {
      bad.Add("answered finally at the gateway yet decided by a worker",
              absl::StrCat(id, " answered ", OutcomeName(e.answer)));
    }
  }

  // ISSUED seen on streams and answers == the user_coupons rows, id by id.
  v.issued_seen = static_cast<int64_t>(issued_seen.size());
  // A failed call's request may be decided after the streams closed: its
  // copy is real but its result was not watched, so it is not a violation.
  absl::flat_hash_set<std::string> issued_rows;
  int64_t issued_unwatched = 0;
  for (const DbSnapshot::Holder& h : db.holders) {
    issued_rows.insert(h.request_id);
    ++v.checks;
    if (issued_seen.contains(h.request_id)) continue;
    std::optional<size_t> n = plan.RequestNumber(h.request_id);
    const Ledger::Entry e = n ? ledger.entry(*n) : Ledger::Entry{};
    if (n && e.error_code != 0 && e.via == Via::kNone) {
      ++issued_unwatched;
    } else {
      bad.Add("user_coupons row whose ISSUED result was never seen",
              absl::StrCat(h.request_id, " coupon ", h.coupon_id, " ", h.user_id));
    }
  }
  for (const std::string& id : issued_seen) {
    ++v.checks;
    if (!issued_rows.contains(id)) {
      ++v.told_issued_missing;
      bad.Add("ISSUED seen without a user_coupons row", id);
    }
  }
  ++v.checks;
  if (v.issued_seen + issued_unwatched != static_cast<int64_t>(db.holders.size())) {
    bad.Add("ISSUED seen != issued rows",
            absl::StrCat(issued_seen.size(), " seen + ", issued_unwatched,
                         " failed calls issued unwatched, ", db.holders.size(),
                         " rows"));
  }
  if (issued_unwatched > 0) {
    v.warnings.push_back(absl::StrCat(
        issued_unwatched,
        " copies went to failed calls whose result came after the streams closed"));
  }

  for (const auto& [id, r] : db.results) {
    ++v.checks;
    if (!plan.RequestNumber(id)) {
      bad.Add("issue_results row for a request this run never sent",
              absl::StrCat(id, " coupon ", r.coupon_id));
    }
  }
  v.decided_rows = static_cast<int64_t>(db.results.size());

  // Per coupon: stock, uniqueness, min(stock, users).
  for (size_t c = 0; c < coupons; ++c) {
    CouponVerdict cv;
    cv.coupon_id = plan.coupon_ids[c];
    cv.stock = stock;
    for (uint32_t u = 0; u < plan.users; ++u) {
      if (plan.CouponIndexOfUser(u) != c) continue;
      ++cv.users_sent;
      if (user_answered[u]) ++cv.users_answered;
    }
    cv.expected_min = std::min(stock, cv.users_answered);
    cv.expected_max = std::min(stock, cv.users_sent);
    const std::string name = absl::StrCat("coupon ", cv.coupon_id);
    auto it = db.coupons.find(cv.coupon_id);
    ++v.checks;
    if (it == db.coupons.end()) {
      bad.Add("coupon missing from coupons", name);
      v.coupons.push_back(cv);
      continue;
    }
    const DbSnapshot::Coupon& dc = it->second;
    cv.issued = dc.issued_rows;
    cv.remaining = dc.remaining_quantity;
    v.checks += 5;
    if (dc.total_quantity != stock) {
      bad.Add("total_quantity != stock",
              absl::StrCat(name, ": ", dc.total_quantity, " != ", stock));
    }
    if (dc.issued_rows != dc.distinct_users) {
      bad.Add("a user holds two copies of one coupon",
              absl::StrCat(name, ": ", dc.issued_rows, " rows, ",
                           dc.distinct_users, " distinct users"));
    }
    if (dc.remaining_quantity != dc.total_quantity - dc.issued_rows) {
      bad.Add("remaining_quantity != stock - issued",
              absl::StrCat(name, ": remaining ", dc.remaining_quantity,
                           ", total ", dc.total_quantity, ", issued ",
                           dc.issued_rows));
    }
    if (dc.issued_rows < cv.expected_min || dc.issued_rows > cv.expected_max) {
      bad.Add("issued != min(stock, users who asked)",
              absl::StrCat(name, ": issued ", dc.issued_rows, ", expected ",
                           cv.expected_min == cv.expected_max
                               ? absl::StrCat(cv.expected_min)
                               : absl::StrCat(cv.expected_min, "..",
                                              cv.expected_max)));
    }
    if (sold_out_seen[c] && dc.remaining_quantity != 0) {
      bad.Add("SOLD_OUT while copies remain",
              absl::StrCat(name, ": remaining ", dc.remaining_quantity));
    }
    v.coupons.push_back(cv);
  }

  const Ledger::Counters counters = ledger.counters();
  std::vector<std::string> notes = ledger.notes();
  const std::string note_text = notes.empty() ? "" : absl::StrJoin(notes, "; ");
  v.checks += 3;
  if (counters.conflicting > 0) {
    bad.Add("two different results for one request",
            absl::StrCat(counters.conflicting, " times; ", note_text));
  }
  if (counters.mismatched > 0) {
    bad.Add("result names another user or coupon",
            absl::StrCat(counters.mismatched, " times; ", note_text));
  }
  if (counters.foreign > 0) {
    bad.Add("result on a stream for a request this run never sent",
            absl::StrCat(counters.foreign, " times; ", note_text));
  }
  if (counters.duplicates_live > 0) {
    v.warnings.push_back(absl::StrCat(
        counters.duplicates_live,
        " identical results delivered again on a coupon stream (replays)"));
  }
  v.violations = bad.Lines();
  return v;
}

}  // namespace coupon::bench
