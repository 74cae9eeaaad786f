#include "gateway/results/stored_result_poller.h"

#include "glog/logging.h"

namespace coupon::gateway {

StoredResultPoller::StoredResultPoller(ResultHub* hub, GatewayStore* store,
                                       absl::Duration interval,
                                       size_t ids_per_round)
    : hub_(hub),
      store_(store),
      interval_(interval),
      ids_per_round_(ids_per_round),
      thread_([this] { Run(); }) {}

StoredResultPoller::~StoredResultPoller() {
  stop_.store(true);
  thread_.join();
}

void StoredResultPoller::Run() {
  while (!stop_.load()) {
    // A watch looks in the store itself when it opens: its ids are due one
    // interval later, and then once per interval while ids keep waiting.
    const std::vector<std::string> ids =
        hub_->watches().TakeWaiting(absl::Now() - interval_, ids_per_round_);
    if (!ids.empty()) {
      absl::StatusOr<std::vector<IssueResult>> found = store_->FindResults(ids);
      if (found.ok()) {
        for (const IssueResult& r : *found) hub_->Remember(r);
      } else {
        LOG_EVERY_N(WARNING, 10) << "gateway: looking up watched results: "
                                 << found.status();
      }
    }
    for (absl::Duration slept; slept < interval_ && !stop_.load();
         slept += absl::Milliseconds(50)) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
}

}  // namespace coupon::gateway
