#include "gateway/result_hub.h"

#include <algorithm>

namespace coupon::gateway {
namespace {

template <typename Map, typename Key>
void RemoveWatcher(Map& map, const Key& key, ResultWatcher* watcher) {
  auto it = map.find(key);
  if (it == map.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), watcher), list.end());
  if (list.empty()) map.erase(it);
}

template <typename Map, typename Key>
void Notify(const Map& map, const Key& key, const IssueResult& result) {
  auto it = map.find(key);
  if (it == map.end()) return;
  for (ResultWatcher* w : it->second) w->OnResult(result);
}

}  // namespace

void ResultHub::Remember(const IssueResult& r) {
  if (results_.insert_or_assign(r.request_id, r).second) {
    result_order_.push_back(r.request_id);
    if (result_order_.size() > limits_.max_results) {
      results_.erase(result_order_.front());
      result_order_.pop_front();
    }
  }
  if (r.outcome == Outcome::kIssued) {
    PairKey key{r.coupon_id, r.user_id};
    if (issued_.insert_or_assign(key, IssuedTo{r.request_id, r.user_coupon_id})
            .second) {
      issued_order_.push_back(std::move(key));
      if (issued_order_.size() > limits_.max_issued_pairs) {
        issued_.erase(issued_order_.front());
        issued_order_.pop_front();
      }
    }
  }
  // Stock only goes down, so sold out stays sold out.
  if (r.outcome == Outcome::kSoldOut ||
      (r.outcome == Outcome::kIssued && r.remaining_quantity == 0)) {
    sold_out_.insert(r.coupon_id);
  }
}

void ResultHub::Publish(const IssueResult& result) {
  std::lock_guard<std::mutex> lock(mu_);
  Remember(result);
  Notify(by_request_, result.request_id, result);
  Notify(by_user_, result.user_id, result);
  Notify(by_coupon_, result.coupon_id, result);
}

std::optional<IssueResult> ResultHub::FindResult(
    const std::string& request_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = results_.find(request_id);
  if (it == results_.end()) return std::nullopt;
  return it->second;
}

std::optional<KnownAnswer> ResultHub::Precheck(int64_t coupon_id,
                                               const std::string& user_id,
                                               const std::string& request_id,
                                               bool* request_id_conflict) const {
  *request_id_conflict = false;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = results_.find(request_id); it != results_.end()) {
    const IssueResult& r = it->second;
    if (r.coupon_id != coupon_id || r.user_id != user_id) {
      *request_id_conflict = true;
      return std::nullopt;
    }
    return KnownAnswer{r.outcome, r.user_coupon_id};
  }
  if (auto it = issued_.find(PairKey{coupon_id, user_id}); it != issued_.end()) {
    if (it->second.request_id == request_id) {
      return KnownAnswer{Outcome::kIssued, it->second.user_coupon_id};
    }
    return KnownAnswer{Outcome::kAlreadyIssued, 0};
  }
  if (sold_out_.contains(coupon_id)) return KnownAnswer{Outcome::kSoldOut, 0};
  return std::nullopt;
}

std::vector<IssueResult> ResultHub::WatchRequests(
    const std::vector<std::string>& ids, ResultWatcher* watcher) {
  std::vector<IssueResult> known;
  std::lock_guard<std::mutex> lock(mu_);
  auto& reg = registrations_[watcher];
  for (const std::string& id : ids) {
    by_request_[id].push_back(watcher);
    reg.request_ids.push_back(id);
    if (auto it = results_.find(id); it != results_.end()) {
      known.push_back(it->second);
    }
  }
  if (shut_down_) watcher->OnShutdown();
  return known;
}

void ResultHub::WatchUser(const std::string& user_id, ResultWatcher* watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  by_user_[user_id].push_back(watcher);
  registrations_[watcher].user_ids.push_back(user_id);
  if (shut_down_) watcher->OnShutdown();
}

void ResultHub::WatchCoupon(int64_t coupon_id, ResultWatcher* watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  by_coupon_[coupon_id].push_back(watcher);
  registrations_[watcher].coupon_ids.push_back(coupon_id);
  if (shut_down_) watcher->OnShutdown();
}

void ResultHub::Unwatch(ResultWatcher* watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = registrations_.find(watcher);
  if (it == registrations_.end()) return;
  for (const auto& id : it->second.request_ids) {
    RemoveWatcher(by_request_, id, watcher);
  }
  for (const auto& id : it->second.user_ids) RemoveWatcher(by_user_, id, watcher);
  for (int64_t id : it->second.coupon_ids) {
    RemoveWatcher(by_coupon_, id, watcher);
  }
  registrations_.erase(it);
}

void ResultHub::ShutdownWatchers() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  for (const auto& [watcher, unused] : registrations_) watcher->OnShutdown();
}

size_t ResultHub::watcher_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registrations_.size();
}

}  // namespace coupon::gateway
