#include "tests/testing/kafka_topics.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"

namespace coupon::testing {
namespace {

constexpr char kRunTopicPrefix[] = "coupon-it-";

int Millis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using Event = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

// Waits for the answer to the CreateTopics or DeleteTopics call just made on
// `queue`: its first error (a topic's error `ignore` excepted), or OK.
absl::Status AwaitTopicResults(rd_kafka_queue_t* queue, absl::Duration timeout,
                               const char* what, rd_kafka_resp_err_t ignore) {
  Event event(rd_kafka_queue_poll(queue, Millis(timeout)));
  if (!event) {
    return absl::DeadlineExceededError(absl::StrCat(
        what, ": no answer from the broker within ", absl::FormatDuration(timeout)));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat(what, ": ", rd_kafka_event_error_string(event.get())));
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** results = nullptr;
  if (const rd_kafka_CreateTopics_result_t* created =
          rd_kafka_event_CreateTopics_result(event.get())) {
    results = rd_kafka_CreateTopics_result_topics(created, &n);
  } else if (const rd_kafka_DeleteTopics_result_t* deleted =
                 rd_kafka_event_DeleteTopics_result(event.get())) {
    results = rd_kafka_DeleteTopics_result_topics(deleted, &n);
  }
  for (size_t i = 0; i < n; ++i) {
    const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != ignore) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, " ", rd_kafka_topic_result_name(results[i]), ": ", rd_kafka_err2str(e)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string RunPrefix(const std::string& tag) {
  static const std::string run =
      absl::StrCat(kRunTopicPrefix, getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  return absl::StrCat(run, "-", tag);
}

TopicAdmin::TopicAdmin(const std::string& brokers) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  CHECK_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof(err)),
           RD_KAFKA_CONF_OK)
      << err;
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));  // owns conf
  CHECK(rk_ != nullptr) << err;
  queue_ = rd_kafka_queue_new(rk_);
}

TopicAdmin::~TopicAdmin() {
  rd_kafka_queue_destroy(queue_);
  rd_kafka_destroy(rk_);
}

absl::Status TopicAdmin::Create(const std::vector<TopicSpec>& topics,
                                absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> specs;
  for (const TopicSpec& t : topics) {
    rd_kafka_NewTopic_t* spec =
        rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, 1, err, sizeof(err));
    if (spec == nullptr) {
      rd_kafka_NewTopic_destroy_array(specs.data(), specs.size());
      return absl::InvalidArgumentError(absl::StrCat("topic ", t.name, ": ", err));
    }
    specs.push_back(spec);
  }
  rd_kafka_CreateTopics(rk_, specs.data(), specs.size(), nullptr, queue_);
  rd_kafka_NewTopic_destroy_array(specs.data(), specs.size());
  if (absl::Status s =
          AwaitTopicResults(queue_, timeout, "CreateTopics", RD_KAFKA_RESP_ERR_NO_ERROR);
      !s.ok()) {
    return s;
  }
  while (true) {
    absl::StatusOr<bool> led = Led(topics);
    if (led.ok() && *led) return absl::OkStatus();
    if (absl::Now() >= until) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the new topics have no leader for every partition after ",
          absl::FormatDuration(timeout),
          led.ok() ? std::string() : absl::StrCat(": ", led.status().message())));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status TopicAdmin::Delete(const std::vector<std::string>& names,
                                absl::Duration timeout) {
  if (names.empty()) return absl::OkStatus();
  std::vector<rd_kafka_DeleteTopic_t*> specs;
  for (const std::string& name : names) specs.push_back(rd_kafka_DeleteTopic_new(name.c_str()));
  rd_kafka_DeleteTopics(rk_, specs.data(), specs.size(), nullptr, queue_);
  rd_kafka_DeleteTopic_destroy_array(specs.data(), specs.size());
  return AwaitTopicResults(queue_, timeout, "DeleteTopics",
                           RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
}

absl::StatusOr<std::vector<std::string>> TopicAdmin::GroupMembers(
    const std::string& group, absl::Duration timeout) {
  const char* groups[] = {group.c_str()};
  rd_kafka_DescribeConsumerGroups(rk_, groups, 1, nullptr, queue_);
  Event event(rd_kafka_queue_poll(queue_, Millis(timeout)));
  if (!event) {
    return absl::DeadlineExceededError(absl::StrCat(
        "DescribeConsumerGroups: no answer from the broker within ",
        absl::FormatDuration(timeout)));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat(
        "DescribeConsumerGroups: ", rd_kafka_event_error_string(event.get())));
  }
  const rd_kafka_DescribeConsumerGroups_result_t* result =
      rd_kafka_event_DescribeConsumerGroups_result(event.get());
  size_t n = 0;
  const rd_kafka_ConsumerGroupDescription_t** described =
      result == nullptr ? nullptr : rd_kafka_DescribeConsumerGroups_result_groups(result, &n);
  if (n != 1) {
    return absl::InternalError(absl::StrCat("DescribeConsumerGroups ", group,
                                            ": ", n, " groups in the answer"));
  }
  if (const rd_kafka_error_t* e = rd_kafka_ConsumerGroupDescription_error(described[0])) {
    return absl::UnavailableError(absl::StrCat("DescribeConsumerGroups ", group, ": ",
                                               rd_kafka_error_string(e)));
  }
  std::vector<std::string> members;
  const size_t count = rd_kafka_ConsumerGroupDescription_member_count(described[0]);
  for (size_t i = 0; i < count; ++i) {
    members.push_back(rd_kafka_MemberDescription_client_id(
        rd_kafka_ConsumerGroupDescription_member(described[0], i)));
  }
  return members;
}

absl::StatusOr<std::vector<std::string>> TopicAdmin::List(absl::Duration timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t e = rd_kafka_metadata(rk_, 1, nullptr, &metadata, Millis(timeout));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("metadata: ", rd_kafka_err2str(e)));
  }
  std::vector<std::string> names;
  for (int t = 0; t < metadata->topic_cnt; ++t) names.push_back(metadata->topics[t].topic);
  rd_kafka_metadata_destroy(metadata);
  return names;
}

absl::StatusOr<bool> TopicAdmin::Led(const std::vector<TopicSpec>& topics) {
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t e = rd_kafka_metadata(rk_, 1, nullptr, &metadata, 5000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("metadata: ", rd_kafka_err2str(e)));
  }
  size_t ready = 0;
  for (const TopicSpec& want : topics) {
    for (int t = 0; t < metadata->topic_cnt; ++t) {
      const rd_kafka_metadata_topic_t& topic = metadata->topics[t];
      if (want.name != topic.topic) continue;
      bool led = topic.err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                 topic.partition_cnt == want.partitions;
      for (int p = 0; led && p < topic.partition_cnt; ++p) {
        led = topic.partitions[p].leader >= 0 &&
              topic.partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR;
      }
      ready += led;
    }
  }
  rd_kafka_metadata_destroy(metadata);
  return ready == topics.size();
}

absl::StatusOr<int> SweepDeadRunTopics(TopicAdmin& admin) {
  absl::StatusOr<std::vector<std::string>> all = admin.List();
  if (!all.ok()) return all.status();
  std::vector<std::string> dead;
  for (const std::string& name : *all) {
    absl::string_view rest = name;
    if (!absl::ConsumePrefix(&rest, kRunTopicPrefix)) continue;
    const std::vector<absl::string_view> parts = absl::StrSplit(rest, absl::MaxSplits('-', 1));
    int pid = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid) || pid <= 0) continue;
    // ESRCH only: EPERM is a live process of another user.
    if (kill(pid, 0) == -1 && errno == ESRCH) dead.push_back(name);
  }
  if (absl::Status s = admin.Delete(dead); !s.ok()) return s;
  if (!dead.empty()) {
    LOG(INFO) << "deleted " << dead.size() << " topics of test runs that died";
  }
  return static_cast<int>(dead.size());
}

}  // namespace coupon::testing
