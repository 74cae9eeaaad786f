#include "gateway/results/watch_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace coupon::gateway {
namespace {

void Remove(std::vector<ResultWatcher*>& list, ResultWatcher* watcher) {
  list.erase(std::remove(list.begin(), list.end(), watcher), list.end());
}

}  // namespace

absl::Status WatchRegistry::Open(ResultWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  if (open_.size() >= max_watches_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this gateway has ", max_watches_,
        " watches open, its limit: watch again shortly or on another gateway"));
  }
  open_.try_emplace(watcher);
  if (shut_down_) watcher->OnShutdown();
  return absl::OkStatus();
}

void WatchRegistry::WatchRequests(const std::vector<std::string>& ids,
                                  ResultWatcher* watcher) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  auto& reg = open_[watcher];
  for (const std::string& id : ids) {
    auto [it, added] = by_request_.try_emplace(id);
    if (added) waiting_.emplace_back(now, id);
    it->second.push_back(watcher);
    reg.request_ids.push_back(id);
  }
}

void WatchRegistry::WatchUser(const std::string& user_id, ResultWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  by_user_[user_id].push_back(watcher);
  open_[watcher].user_ids.push_back(user_id);
}

void WatchRegistry::WatchCoupon(int64_t coupon_id, ResultWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  by_coupon_[coupon_id].push_back(watcher);
  open_[watcher].coupon_ids.push_back(coupon_id);
}

void WatchRegistry::Close(ResultWatcher* watcher) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(watcher);
  if (it == open_.end()) return;
  for (const auto& id : it->second.request_ids) {
    if (auto w = by_request_.find(id); w != by_request_.end()) {
      Remove(w->second, watcher);
      if (w->second.empty()) by_request_.erase(w);
    }
  }
  for (const auto& id : it->second.user_ids) {
    if (auto w = by_user_.find(id); w != by_user_.end()) {
      Remove(w->second, watcher);
      if (w->second.empty()) by_user_.erase(w);
    }
  }
  for (int64_t id : it->second.coupon_ids) {
    if (auto w = by_coupon_.find(id); w != by_coupon_.end()) {
      Remove(w->second, watcher);
      if (w->second.empty()) by_coupon_.erase(w);
    }
  }
  open_.erase(it);
}

void WatchRegistry::Deliver(const IssueResult& result, bool live) {
  absl::MutexLock lock(&mu_);
  if (auto it = by_request_.find(result.request_id); it != by_request_.end()) {
    for (ResultWatcher* w : it->second) w->OnResult(result);
  }
  if (!live) return;
  if (auto it = by_user_.find(result.user_id); it != by_user_.end()) {
    for (ResultWatcher* w : it->second) w->OnResult(result);
  }
  if (auto it = by_coupon_.find(result.coupon_id); it != by_coupon_.end()) {
    for (ResultWatcher* w : it->second) w->OnResult(result);
  }
}

std::vector<std::string> WatchRegistry::TakeWaiting(absl::Time since, size_t max) {
  std::vector<std::string> ids;
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  // Bounded work: each id looked at is handed out or dropped.
  for (size_t looked = 0; looked < max && !waiting_.empty() &&
                          waiting_.front().first <= since;
       ++looked) {
    std::string id = std::move(waiting_.front().second);
    waiting_.pop_front();
    if (!by_request_.contains(id)) continue;
    ids.push_back(id);
    waiting_.emplace_back(now, std::move(id));
  }
  return ids;
}

void WatchRegistry::ShutdownWatchers() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (const auto& [watcher, unused] : open_) watcher->OnShutdown();
}

size_t WatchRegistry::open_watches() const {
  absl::MutexLock lock(&mu_);
  return open_.size();
}

}  // namespace coupon::gateway
