#include "gateway/results/result_listener.h"

#include "common/kafka/consumer.h"
#include "common/wire/event_codec.h"
#include "glog/logging.h"

namespace coupon::gateway {

ResultListener::ResultListener(ResultListenerConfig config, ResultHub* hub)
    : config_(std::move(config)), hub_(hub) {}

ResultListener::~ResultListener() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  if (progress_thread_.joinable()) progress_thread_.join();
}

absl::Status ResultListener::Start() {
  auto reader = kafka::TopicReader::Create(config_.brokers, config_.topic, config_.extra);
  if (!reader.ok()) return reader.status();
  reader_ = std::move(*reader);
  if (!config_.worker_group.empty()) {
    auto offsets =
        kafka::GroupOffsets::Create(config_.brokers, config_.worker_group, config_.extra);
    if (!offsets.ok()) return offsets.status();
    offsets_ = std::move(*offsets);
    progress_thread_ = std::thread([this] { ReadProgress(); });
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void ResultListener::ReadProgress() {
  absl::Time next = absl::Now();
  while (!stop_.load()) {
    if (absl::Now() < next) {
      absl::SleepFor(absl::Milliseconds(100));
      continue;
    }
    next = absl::Now() + config_.progress_interval;
    absl::StatusOr<std::map<int32_t, int64_t>> committed =
        offsets_->NextToRead(config_.request_topic, absl::Seconds(2));
    if (!committed.ok()) {
      LOG_EVERY_N(WARNING, 10) << "result listener: " << committed.status();
      continue;
    }
    // The group reads `offset` next: everything before it is decided.
    for (const auto& [partition, offset] : *committed) {
      hub_->cache().DecidedThrough(partition, offset - 1);
    }
  }
}

void ResultListener::Track(int32_t partition, int64_t offset) {
  auto it = behind_.find(partition);
  if (it == behind_.end() || offset + 1 < it->second) return;
  behind_.erase(it);
  if (behind_.empty()) {
    ready_.store(true);
    LOG(INFO) << "result listener: caught up with " << config_.topic;
  }
}

void ResultListener::Run() {
  while (!stop_.load()) {
    absl::StatusOr<std::map<int32_t, int64_t>> behind =
        reader_->AssignFrom(absl::Now() - config_.replay_window);
    if (behind.ok()) {
      behind_ = std::move(*behind);
      LOG(INFO) << "result listener: reading " << config_.topic << " from "
                << config_.replay_window << " ago";
      if (behind_.empty()) ready_.store(true);
      break;
    }
    LOG(WARNING) << "result listener: " << behind.status() << "; retrying";
    absl::SleepFor(absl::Seconds(1));
  }
  while (!stop_.load()) {
    std::optional<kafka::Record> msg = reader_->Poll(absl::Milliseconds(100));
    if (!msg) continue;
    if (!ready_.load()) Track(msg->partition, msg->offset);
    if (const std::string* header = msg->Header(kDecidedThroughHeader)) {
      if (absl::StatusOr<DecidedThrough> through = DecodeDecidedThrough(*header);
          through.ok()) {
        hub_->cache().DecidedThrough(through->partition, through->offset);
      } else {
        LOG_EVERY_N(WARNING, 100) << "result listener: partition " << msg->partition
                                  << " offset " << msg->offset << ": "
                                  << through.status();
      }
    }
    absl::StatusOr<IssueResult> result = DecodeIssueResult(msg->payload);
    if (!result.ok()) {
      LOG_EVERY_N(ERROR, 100) << "result listener: skipping partition "
                              << msg->partition << " offset " << msg->offset << ": "
                              << result.status();
      continue;
    }
    VLOG(1) << "result for request " << result->request_id << ": "
            << OutcomeName(result->outcome) << " (result partition "
            << msg->partition << " offset " << msg->offset << ")";
    hub_->Publish(*result);
  }
}

}  // namespace coupon::gateway
