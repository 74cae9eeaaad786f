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
}

absl::Status ResultListener::Start() {
  auto reader = kafka::TopicReader::Create(config_.brokers, config_.topic, config_.extra);
  if (!reader.ok()) return reader.status();
  reader_ = std::move(*reader);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
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
    absl::StatusOr<IssueResult> result = DecodeIssueResult(msg->payload);
    if (!result.ok()) {
      LOG_EVERY_N(ERROR, 100) << "result listener: skipping partition "
                              << msg->partition << " offset " << msg->offset << ": "
                              << result.status();
      continue;
    }
    hub_->Publish(*result);
  }
}

}  // namespace coupon::gateway
