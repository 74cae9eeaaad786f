// chaos-probe: the small Kafka, PostgreSQL and gRPC tools the fault-injection
// suite (tests/chaos/run) needs and the shell cannot do cheaply. One subcommand
// per call; output is tab-separated lines on stdout, diagnostics on stderr.
//
//   topics  --topics=name:partitions,... [--replication_factor=N]
//           [--topic_configs=k=v,...]          create the topics that are missing
//   poison  --topic=T --keys=k1,k2,k3 --tag=X  write three poison events (garbage
//           bytes, an unknown coupon, an oversized user_id) straight into T;
//           prints: kind  partition  offset
//   dlq     --topic=T                          every dead letter on T, oldest first;
//           prints: source_partition  source_offset  reason
//   lag     --group=G --topic=T --interval=500ms  until killed, one line per sample:
//           unix_ms  p:committed:high ...   (or  unix_ms  down)
//   coupon  --target=A --stock=N [--cover_partitions=P]
//           create a coupon and print its id; with --cover_partitions, create
//           coupons until each of the request topic's P partitions has one (the
//           gateway's key, the coupon id, under librdkafka's murmur2);
//           prints: coupon_id  partition
//   issue   --target=A --coupon=C[,C2...] --count=N --interval=D --deadline=D --tag=X
//           N IssueCoupon calls, one per interval, new users, round robin over
//           the coupons; prints: unix_ms  code  latency_ms  outcome (or the error)
//   freeze  --pg_dsn=D --application_name=NAME --pid=PID --timeout=D
//           SIGSTOP process PID while its PostgreSQL session (application_name
//           NAME) is inside a transaction that has written (it holds row locks),
//           and confirm after the stop that the session is still in that same
//           transaction (else SIGCONT and try again); prints:
//           unix_ms_stopped  backend_pid  xid8  state  attempts
//
// It writes to topics and calls the API like any client would; it reads the
// consumer group's offsets without joining the group.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coupon/v1/coupon_service.grpc.pb.h"
#include "coupon/v1/events.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, brokers, "127.0.0.1:9092", "Kafka bootstrap servers.");
ABSL_FLAG(std::string, topics, "", "topics: name:partitions,...");
ABSL_FLAG(int, replication_factor, 1, "topics: replicas of each partition.");
ABSL_FLAG(std::string, topic_configs, "",
          "topics: topic settings, k=v,... (min.insync.replicas=2,...).");
ABSL_FLAG(int, cover_partitions, 0,
          "coupon: create coupons until each of this many partitions has one.");
ABSL_FLAG(std::string, pg_dsn, "", "freeze: PostgreSQL to watch.");
ABSL_FLAG(std::string, application_name, "",
          "freeze: the application_name of the session to catch in a "
          "transaction.");
ABSL_FLAG(int, pid, 0, "freeze: the process to SIGSTOP.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60),
          "freeze: give up after this long.");
ABSL_FLAG(std::string, topic, "", "The topic to write to or read from.");
ABSL_FLAG(std::string, keys, "",
          "poison: keys of the three events, comma-separated.");
ABSL_FLAG(std::string, tag, "chaos",
          "Marks the request ids and users this run makes.");
ABSL_FLAG(std::string, group, "",
          "lag: the consumer group whose offsets to read.");
ABSL_FLAG(absl::Duration, interval, absl::Milliseconds(500),
          "lag, issue: pause between samples or calls.");
ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "coupon, issue: CouponService address.");
ABSL_FLAG(int64_t, stock, 1000000, "coupon: copies.");
ABSL_FLAG(std::string, coupon, "",
          "issue: the coupon to ask for, or several, comma-separated.");
ABSL_FLAG(int, count, 10, "issue: calls.");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(2),
          "issue: each call's deadline.");

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

int64_t UnixMs() { return absl::ToUnixMillis(absl::Now()); }

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "chaos-probe: " << what << "\n";
  std::exit(1);
}

std::unique_ptr<RdKafka::Conf> Conf(
    const std::map<std::string, std::string>& props) {
  std::unique_ptr<RdKafka::Conf> conf(
      RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  for (const auto& [k, v] : props) {
    if (conf->set(k, v, error) != RdKafka::Conf::CONF_OK) Die(k + ": " + error);
  }
  return conf;
}

// Partition count of `topic`, or -1 when the broker does not answer.
int Partitions(RdKafka::Handle* handle, const std::string& topic,
               int timeout_ms) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> t(
      RdKafka::Topic::create(handle, topic, nullptr, error));
  if (!t) return -1;
  RdKafka::Metadata* raw = nullptr;
  if (handle->metadata(false, t.get(), &raw, timeout_ms) !=
      RdKafka::ERR_NO_ERROR)
    return -1;
  std::unique_ptr<RdKafka::Metadata> md(raw);
  if (md->topics()->empty() ||
      (*md->topics())[0]->err() != RdKafka::ERR_NO_ERROR)
    return -1;
  return static_cast<int>((*md->topics())[0]->partitions()->size());
}

// ---------------------------------------------------------------------------
// topics: librdkafka has the admin API only in C.
int Topics() {
  std::vector<std::pair<std::string, int>> wanted;
  for (absl::string_view spec :
       absl::StrSplit(absl::GetFlag(FLAGS_topics), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(spec, ':');
    int n = 0;
    if (!absl::SimpleAtoi(kv.second, &n) || n < 1)
      Die(absl::StrCat("bad topic spec ", spec));
    wanted.push_back({kv.first, n});
  }
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers",
                    absl::GetFlag(FLAGS_brokers).c_str(), err, sizeof(err));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) Die(err);
  std::vector<std::pair<std::string, std::string>> configs;
  for (absl::string_view kv : absl::StrSplit(absl::GetFlag(FLAGS_topic_configs),
                                             ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> c =
        absl::StrSplit(kv, absl::MaxSplits('=', 1));
    configs.push_back(c);
  }
  std::vector<rd_kafka_NewTopic_t*> news;
  for (const auto& [name, parts] : wanted) {
    rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(
        name.c_str(), parts, absl::GetFlag(FLAGS_replication_factor), err,
        sizeof(err));
    if (!t) Die(err);
    for (const auto& [k, v] : configs) {
      if (rd_kafka_NewTopic_set_config(t, k.c_str(), v.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        Die(absl::StrCat("topic config ", k, "=", v));
      }
    }
    news.push_back(t);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, news.data(), news.size(), nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  int rc = 0;
  if (!ev) {
    std::cerr << "chaos-probe: CreateTopics timed out\n";
    rc = 1;
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** res = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
          e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        std::cerr << "chaos-probe: " << rd_kafka_topic_result_name(res[i])
                  << ": " << rd_kafka_err2str(e) << "\n";
        rc = 1;
      }
    }
    rd_kafka_event_destroy(ev);
  }
  for (auto* t : news) rd_kafka_NewTopic_destroy(t);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
  return rc;
}

// ---------------------------------------------------------------------------
// poison
class Reports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& m) override {
    const std::string* kind = static_cast<const std::string*>(m.msg_opaque());
    if (m.err() != RdKafka::ERR_NO_ERROR) {
      std::cerr << "chaos-probe: " << *kind << " not written: " << m.errstr()
                << "\n";
      failed = true;
    } else {
      std::cout << *kind << "\t" << m.partition() << "\t" << m.offset() << "\n";
    }
    --pending;
  }
  int pending = 0;
  bool failed = false;
};

int Poison() {
  const std::string topic = absl::GetFlag(FLAGS_topic);
  std::vector<std::string> keys =
      absl::StrSplit(absl::GetFlag(FLAGS_keys), ',', absl::SkipEmpty());
  if (topic.empty() || keys.size() != 3)
    Die("poison needs --topic and three --keys");
  const std::string tag = absl::GetFlag(FLAGS_tag);
  const int64_t now_s = absl::ToUnixSeconds(absl::Now());

  // Not protobuf at all: field 0 and an endless varint.
  std::string garbage("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
  absl::StrAppend(&garbage, "garbage-", tag);

  coupon::v1::IssueRequested unknown;
  unknown.set_request_id(absl::StrCat(tag, "-poison-unknown"));
  unknown.set_coupon_id(9'000'000'000'000 + now_s % 1'000'000);
  unknown.set_user_id(absl::StrCat(tag, "-poison"));
  unknown.mutable_requested_at()->set_seconds(now_s);
  unknown.set_gateway_id("chaos-probe");

  coupon::v1::IssueRequested oversized = unknown;
  oversized.set_request_id(absl::StrCat(tag, "-poison-oversized"));
  oversized.set_coupon_id(1);
  oversized.set_user_id(std::string(2000, 'x'));  // validation allows 128 bytes

  const std::vector<std::pair<std::string, std::string>> events = {
      {"garbage", garbage},
      {"unknown_coupon", unknown.SerializeAsString()},
      {"oversized_user_id", oversized.SerializeAsString()},
  };
  Reports reports;
  auto conf = Conf({{"bootstrap.servers", absl::GetFlag(FLAGS_brokers)},
                    {"acks", "all"},
                    {"partitioner", "murmur2_random"},
                    {"message.timeout.ms", "20000"}});
  std::string error;
  conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&reports), error);
  std::unique_ptr<RdKafka::Producer> producer(
      RdKafka::Producer::create(conf.get(), error));
  if (!producer) Die(error);
  std::vector<std::string> kinds;
  kinds.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    kinds.push_back(events[i].first);
    const std::string& payload = events[i].second;
    RdKafka::ErrorCode err = producer->produce(
        topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        const_cast<char*>(payload.data()), payload.size(), keys[i].data(),
        keys[i].size(), 0, &kinds.back());
    if (err != RdKafka::ERR_NO_ERROR) Die(RdKafka::err2str(err));
    ++reports.pending;
  }
  producer->flush(30000);
  producer->poll(0);
  return reports.failed || reports.pending != 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------
// dlq
int Dlq() {
  const std::string topic = absl::GetFlag(FLAGS_topic);
  auto conf = Conf({{"bootstrap.servers", absl::GetFlag(FLAGS_brokers)},
                    {"group.id", "chaos-probe-dlq-reader"},
                    {"enable.auto.commit", "false"},
                    {"enable.partition.eof", "true"}});
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) Die(error);
  const int parts = Partitions(consumer.get(), topic, 10000);
  if (parts < 0) Die("no metadata for " + topic);
  std::vector<RdKafka::TopicPartition*> assignment;
  int open = 0;
  for (int p = 0; p < parts; ++p) {
    int64_t low = 0, high = 0;
    if (consumer->query_watermark_offsets(topic, p, &low, &high, 10000) !=
        RdKafka::ERR_NO_ERROR) {
      Die("watermarks of " + topic);
    }
    if (high > low) {
      assignment.push_back(RdKafka::TopicPartition::create(
          topic, p, RdKafka::Topic::OFFSET_BEGINNING));
      ++open;
    }
  }
  if (open == 0) return 0;
  consumer->assign(assignment);
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (open > 0 && absl::Now() < until) {
    std::unique_ptr<RdKafka::Message> m(consumer->consume(500));
    if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      --open;
      continue;
    }
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    coupon::v1::DeadLetter dl;
    if (!dl.ParseFromArray(m->payload(), static_cast<int>(m->len()))) {
      std::cout << "-1\t-1\tunreadable dead letter at offset " << m->offset()
                << "\n";
      continue;
    }
    std::string reason = dl.reason();
    for (char& c : reason) {
      if (c == '\t' || c == '\n') c = ' ';
    }
    std::cout << dl.partition() << "\t" << dl.offset() << "\t" << reason
              << "\n";
  }
  consumer->unassign();
  for (auto* tp : assignment) delete tp;
  consumer->close();
  return open == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------
// lag
int Lag() {
  const std::string topic = absl::GetFlag(FLAGS_topic);
  const std::string group = absl::GetFlag(FLAGS_group);
  if (topic.empty() || group.empty()) Die("lag needs --topic and --group");
  // A consumer that never subscribes does not join the group: it only asks
  // the coordinator for the group's committed offsets.
  auto conf = Conf({{"bootstrap.servers", absl::GetFlag(FLAGS_brokers)},
                    {"group.id", group},
                    {"enable.auto.commit", "false"},
                    {"log_level", "0"}});
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) Die(error);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  int parts = -1;
  while (!g_stop.load()) {
    const absl::Time next = absl::Now() + absl::GetFlag(FLAGS_interval);
    if (parts < 0) parts = Partitions(consumer.get(), topic, 1000);
    std::string line = absl::StrCat(UnixMs());
    bool ok = parts > 0;
    if (ok) {
      std::vector<RdKafka::TopicPartition*> tps, ends;
      for (int p = 0; p < parts; ++p) {
        tps.push_back(RdKafka::TopicPartition::create(topic, p));
        // Timestamp -1 asks each partition's leader for its log end offset:
        // one request per leader for all partitions, bounded by one timeout,
        // so a dead leader costs its own partitions' figures, not the sample.
        ends.push_back(RdKafka::TopicPartition::create(topic, p, -1));
      }
      ok = consumer->committed(tps, 2000) == RdKafka::ERR_NO_ERROR;
      if (ok) consumer->offsetsForTimes(ends, 1000);
      int known = 0;
      for (int p = 0; ok && p < parts; ++p) {
        // A partition without a leader now is left out of this sample.
        if (ends[p]->err() != RdKafka::ERR_NO_ERROR || ends[p]->offset() < 0) continue;
        ++known;
        // No commit yet: the group starts from the beginning, which for the
        // suite's topics is offset 0 or later; take the committed as 0.
        const int64_t committed = std::max<int64_t>(tps[p]->offset(), 0);
        absl::StrAppend(&line, "\t", p, ":", committed, ":", ends[p]->offset());
      }
      ok = ok && known > 0;
      for (auto* tp : tps) delete tp;
      for (auto* tp : ends) delete tp;
    }
    if (!ok) line = absl::StrCat(UnixMs(), "\tdown");
    std::cout << line << std::endl;
    std::this_thread::sleep_until(absl::ToChronoTime(next));
  }
  consumer->close();
  return 0;
}

// ---------------------------------------------------------------------------
// coupon, issue
std::unique_ptr<coupon::v1::CouponService::Stub> Stub() {
  return coupon::v1::CouponService::NewStub(grpc::CreateChannel(
      absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials()));
}

int64_t CreateCoupon(coupon::v1::CouponService::Stub* stub) {
  coupon::v1::CreateCouponRequest req;
  req.set_name(absl::StrCat(absl::GetFlag(FLAGS_tag), " probe coupon"));
  req.set_total_quantity(absl::GetFlag(FLAGS_stock));
  coupon::v1::Coupon resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = stub->CreateCoupon(&ctx, req, &resp);
  if (!s.ok()) Die("CreateCoupon: " + s.error_message());
  return resp.coupon_id();
}

int Coupon() {
  auto stub = Stub();
  const int parts = absl::GetFlag(FLAGS_cover_partitions);
  if (parts <= 0) {
    std::cout << CreateCoupon(stub.get()) << "\n";
    return 0;
  }
  // The gateway keys each event by the coupon id in decimal and partitions
  // with murmur2_random: for a key, that is murmur2.
  std::vector<bool> covered(parts, false);
  int left = parts;
  for (int tries = 0; left > 0; ++tries) {
    if (tries > 50 * parts) Die("could not cover every partition");
    const int64_t id = CreateCoupon(stub.get());
    const std::string key = absl::StrCat(id);
    const int32_t p = rd_kafka_msg_partitioner_murmur2(
        nullptr, key.data(), key.size(), parts, nullptr, nullptr);
    if (covered[p]) continue;
    covered[p] = true;
    --left;
    std::cout << id << "\t" << p << "\n";
  }
  return 0;
}

// absl and gRPC number the canonical codes alike.
std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int Issue() {
  auto stub = Stub();
  const std::string tag = absl::GetFlag(FLAGS_tag);
  std::vector<int64_t> coupons;
  for (absl::string_view c :
       absl::StrSplit(absl::GetFlag(FLAGS_coupon), ',', absl::SkipEmpty())) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(c, &id)) Die(absl::StrCat("bad --coupon ", c));
    coupons.push_back(id);
  }
  if (coupons.empty()) Die("issue needs --coupon");
  for (int i = 0; i < absl::GetFlag(FLAGS_count); ++i) {
    const absl::Time next = absl::Now() + absl::GetFlag(FLAGS_interval);
    coupon::v1::IssueCouponRequest req;
    req.set_coupon_id(coupons[i % coupons.size()]);
    req.set_user_id(absl::StrCat(tag, "-u", i));
    req.set_request_id(absl::StrCat(tag, "-r", i));
    coupon::v1::IssueCouponResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_deadline)));
    const int64_t start = UnixMs();
    const absl::Time t0 = absl::Now();
    grpc::Status s = stub->IssueCoupon(&ctx, req, &resp);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
    std::string what = s.ok() ? coupon::v1::IssueOutcome_Name(resp.outcome())
                              : s.error_message();
    for (char& c : what) {
      if (c == '\t' || c == '\n') c = ' ';
    }
    std::printf("%lld\t%s\t%.1f\t%s\n", static_cast<long long>(start),
                CodeName(s.error_code()).c_str(), ms, what.c_str());
    std::fflush(stdout);
    std::this_thread::sleep_until(absl::ToChronoTime(next));
  }
  return 0;
}

// ---------------------------------------------------------------------------
// freeze
/// One libpq connection, closed on destruction; one thread.
class Pg {
 public:
  explicit Pg(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      Die(absl::StrCat("PostgreSQL: ", PQerrorMessage(conn_)));
    }
  }
  ~Pg() { PQfinish(conn_); }
  Pg(const Pg&) = delete;
  Pg& operator=(const Pg&) = delete;

  // The first row of a one-parameter query, or empty when it has none.
  std::vector<std::string> Row(const char* sql, const std::string& param) {
    const char* values[] = {param.c_str()};
    PGresult* r = PQexecParams(conn_, sql, 1, nullptr, values, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::string e = PQresultErrorMessage(r);
      PQclear(r);
      Die(absl::StrCat("PostgreSQL: ", e));
    }
    std::vector<std::string> row;
    if (PQntuples(r) > 0) {
      for (int c = 0; c < PQnfields(r); ++c) row.push_back(PQgetvalue(r, 0, c));
    }
    PQclear(r);
    return row;
  }

 private:
  PGconn* conn_;
};

int Freeze() {
  const std::string app = absl::GetFlag(FLAGS_application_name);
  const pid_t pid = absl::GetFlag(FLAGS_pid);
  if (app.empty() || pid <= 0) Die("freeze needs --application_name and --pid");
  Pg pg(absl::GetFlag(FLAGS_pg_dsn));
  // A session inside a transaction that has written: backend_xid is set from
  // its first write until it ends. The xid's epoch comes from the snapshot, so
  // this session takes no xid of its own.
  constexpr char kInTransaction[] =
      "SELECT pid, backend_xid::text, state, "
      "  (((pg_snapshot_xmax(pg_current_snapshot())::text::bigint >> 32) << 32)"
      "   + backend_xid::text::bigint)::text "
      "FROM pg_stat_activity "
      "WHERE application_name = $1 AND backend_xid IS NOT NULL "
      "  AND state IN ('active', 'idle in transaction') "
      "ORDER BY xact_start LIMIT 1";
  const absl::Time until = absl::Now() + absl::GetFlag(FLAGS_timeout);
  for (int attempt = 1; absl::Now() < until; ++attempt) {
    std::vector<std::string> seen;
    while (seen.empty() && absl::Now() < until) seen = pg.Row(kInTransaction, app);
    if (seen.empty()) break;
    if (kill(pid, SIGSTOP) != 0) Die(absl::StrCat("kill -STOP ", pid, " failed"));
    const int64_t stopped_ms = UnixMs();
    // A statement still running when its client stopped ends; the transaction
    // does not, since COMMIT can no longer be sent.
    absl::SleepFor(absl::Milliseconds(200));
    std::vector<std::string> now = pg.Row(kInTransaction, app);
    if (!now.empty() && now[0] == seen[0] && now[1] == seen[1]) {
      std::cout << stopped_ms << "\t" << now[0] << "\t" << now[3] << "\t"
                << now[2] << "\t" << attempt << "\n";
      return 0;
    }
    // It committed (or rolled back) between the look and the stop: again.
    kill(pid, SIGCONT);
    absl::SleepFor(absl::Milliseconds(50 + 37 * (attempt % 7)));
  }
  Die(absl::StrCat("no transaction of ", app, " caught within ",
                   absl::FormatDuration(absl::GetFlag(FLAGS_timeout))));
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "chaos-probe topics|poison|dlq|lag|coupon|issue|freeze [flags]: tools of "
      "tests/chaos/run");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2)
    Die("one subcommand: topics, poison, dlq, lag, coupon, issue or freeze");
  const std::string cmd = args[1];
  if (cmd == "topics") return Topics();
  if (cmd == "poison") return Poison();
  if (cmd == "dlq") return Dlq();
  if (cmd == "lag") return Lag();
  if (cmd == "coupon") return Coupon();
  if (cmd == "issue") return Issue();
  if (cmd == "freeze") return Freeze();
  Die("unknown subcommand " + cmd);
}
