// The Redis client against the real Redis of scripts/stack (REDIS_ADDR).
// Every key is under a prefix unique to the test and the run, deleted after
// the test; the database is never flushed (other data lives there).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/redis/redis.h"
#include "common/redis/sha1.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/stack_env.h"
#include "tests/testing/status_matchers.h"

namespace coupon::redis {

// gtest prints replies this way in failure messages.
void PrintTo(const Reply& r, std::ostream* os) {
  switch (r.type) {
    case Reply::Type::kNil:
      *os << "(nil)";
      return;
    case Reply::Type::kInteger:
      *os << "(integer) " << r.integer;
      return;
    case Reply::Type::kString:
      *os << "\"" << r.str << "\"";
      return;
    case Reply::Type::kStatus:
      *os << "(status) " << r.str;
      return;
    case Reply::Type::kError:
      *os << "(error) " << r.str;
      return;
    case Reply::Type::kArray:
      *os << "[";
      for (size_t i = 0; i < r.elements.size(); ++i) {
        if (i) *os << ", ";
        PrintTo(r.elements[i], os);
      }
      *os << "]";
      return;
  }
}

namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

MATCHER(IsNil, "is nil") { return arg.type == Reply::Type::kNil; }
MATCHER_P(IsString, s, "is the string \"" + std::string(s) + "\"") {
  return arg.type == Reply::Type::kString && arg.str == s;
}
MATCHER_P(IsInteger, n, "is the integer " + ::testing::PrintToString(n)) {
  return arg.type == Reply::Type::kInteger && arg.integer == n;
}
MATCHER_P(IsStatusReply, s, "is the status " + std::string(s)) {
  return arg.type == Reply::Type::kStatus && arg.str == s;
}
MATCHER_P(IsErrorReply, text, "is an error reply containing " + std::string(text)) {
  return arg.type == Reply::Type::kError &&
         arg.str.find(text) != std::string::npos;
}
MATCHER_P(IsArray, elements_matcher, "is an array that") {
  return arg.type == Reply::Type::kArray &&
         ::testing::ExplainMatchResult(elements_matcher, arg.elements,
                                       result_listener);
}

std::string RedisAddr() {
  return coupon::testing::EnvOr("REDIS_ADDR", "127.0.0.1:6379");
}

RedisConfig TestConfig(int pool_size = 4) {
  RedisConfig config;
  config.addr = RedisAddr();
  config.pool_size = pool_size;
  return config;
}

std::unique_ptr<Client> MustCreate(const RedisConfig& config) {
  auto client = Client::Create(config);
  EXPECT_THAT(client, IsOk());
  return client.ok() ? std::move(*client) : nullptr;
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = MustCreate(TestConfig());
    ASSERT_NE(client_, nullptr);
    auto pong = client_->Command({"PING"});
    ASSERT_THAT(pong, IsOk()) << "no Redis at " << RedisAddr() << ": "
                              << coupon::testing::kStackHint;
    ASSERT_THAT(*pong, IsStatusReply("PONG"));
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = absl::StrCat("redis_client_test:", getpid(), ":",
                           absl::ToUnixNanos(absl::Now()), ":", info->name(),
                           ":");
  }

  void TearDown() override {
    if (client_ == nullptr || prefix_.empty()) return;
    std::string cursor = "0";
    do {
      auto page = client_->Command(
          {"SCAN", cursor, "MATCH", prefix_ + "*", "COUNT", "1000"});
      ASSERT_THAT(page, IsOk());
      ASSERT_EQ(page->type, Reply::Type::kArray);
      ASSERT_EQ(page->elements.size(), 2u);
      cursor = page->elements[0].str;
      std::vector<std::string> del = {"UNLINK"};
      for (const Reply& key : page->elements[1].elements) {
        del.push_back(key.str);
      }
      if (del.size() > 1) {
        ASSERT_THAT(client_->Command(del), IsOk());
      }
    } while (cursor != "0");
  }

  std::string Key(absl::string_view name) const {
    return absl::StrCat(prefix_, name);
  }

  // The reply, after checking the call itself succeeded.
  Reply Run(Client& client, const std::vector<std::string>& argv) {
    auto reply = client.Command(argv);
    EXPECT_THAT(reply, IsOk()) << argv[0];
    return reply.ok() ? *std::move(reply) : Reply{};
  }
  Reply Run(const std::vector<std::string>& argv) { return Run(*client_, argv); }

  std::unique_ptr<Client> client_;
  std::string prefix_;
};

TEST_F(RedisClientTest, SetGetIncrRoundTripBinaryData) {
  const std::string key = Key(std::string("bin\0key\xff", 8));
  const std::string value("a\0b\r\n\xff\x00z", 8);

  EXPECT_THAT(Run({"SET", key, value}), IsStatusReply("OK"));
  EXPECT_THAT(Run({"GET", key}), IsString(value));
  EXPECT_THAT(Run({"STRLEN", key}), IsInteger(8));
  EXPECT_THAT(Run({"GET", Key("missing")}), IsNil());

  const std::string counter = Key("counter");
  EXPECT_THAT(Run({"INCR", counter}), IsInteger(1));
  EXPECT_THAT(Run({"INCRBY", counter, "41"}), IsInteger(42));
  EXPECT_THAT(Run({"GET", counter}), IsString("42"));
}

TEST_F(RedisClientTest, RedisErrorIsAReplyNotAFailedStatus) {
  const std::string key = Key("a_string");
  EXPECT_THAT(Run({"SET", key, "v"}), IsStatusReply("OK"));
  EXPECT_THAT(Run({"LPUSH", key, "x"}), IsErrorReply("WRONGTYPE"));
  EXPECT_THAT(Run({"NO_SUCH_COMMAND"}), IsErrorReply("unknown command"));
  // The connection is still good for the next caller.
  EXPECT_THAT(Run({"GET", key}), IsString("v"));
}

TEST_F(RedisClientTest, EmptyCommandIsInvalidArgument) {
  EXPECT_THAT(client_->Command({}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RedisClientTest, EvalWithKeysAndArgsReturnsAnArray) {
  const Script script(R"lua(
    redis.call('SET', KEYS[1], ARGV[1])
    return {KEYS[1], redis.call('GET', KEYS[1]),
            redis.call('INCRBY', KEYS[2], ARGV[2]), false}
  )lua");
  const std::string name = Key("name");
  const std::string count = Key("count");
  const std::string binary("x\0y", 3);

  auto reply = client_->Eval(script, {name, count}, {binary, "7"});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsArray(ElementsAre(IsString(name), IsString(binary),
                                          IsInteger(7), IsNil())));
  reply = client_->Eval(script, {name, count}, {"second", "3"});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsArray(ElementsAre(IsString(name), IsString("second"),
                                          IsInteger(10), IsNil())));
}

TEST_F(RedisClientTest, ScriptErrorsAreErrorReplies) {
  auto reply = client_->Eval(Script("return redis.error_reply('sold out')"),
                             {}, {});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsErrorReply("sold out"));

  const std::string key = Key("a_string");
  EXPECT_THAT(Run({"SET", key, "v"}), IsStatusReply("OK"));
  reply = client_->Eval(Script("return redis.call('LPUSH', KEYS[1], 'x')"),
                        {key}, {});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsErrorReply("WRONGTYPE"));

  // Never loaded, so this goes through NOSCRIPT and a failing SCRIPT LOAD.
  reply = client_->Eval(
      Script(absl::StrCat("return {{ -- does not compile ", prefix_)), {}, {});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsErrorReply("compiling"));
}

TEST_F(RedisClientTest, EvalRecoversFromNoscript) {
  const Script script(
      absl::StrCat("-- ", prefix_, "\nreturn redis.call('INCR', KEYS[1])"));
  const std::string key = Key("counter");

  auto reply = client_->Eval(script, {key}, {});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsInteger(1));

  // As after a Redis restart: the script cache is empty.
  EXPECT_THAT(Run({"SCRIPT", "FLUSH"}), IsStatusReply("OK"));
  EXPECT_THAT(Run({"SCRIPT", "EXISTS", script.sha1()}),
              IsArray(ElementsAre(IsInteger(0))));

  reply = client_->Eval(script, {key}, {});
  ASSERT_THAT(reply, IsOk());
  EXPECT_THAT(*reply, IsInteger(2));
  EXPECT_THAT(Run({"SCRIPT", "EXISTS", script.sha1()}),
              IsArray(ElementsAre(IsInteger(1))));
}

TEST_F(RedisClientTest, LocalSha1MatchesScriptLoad) {
  // Lengths around SHA-1's 64-byte block and its 56-byte padding limit.
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000}) {
    // Blanks compile too, for the lengths too short for the comment.
    std::string source = len < 11 ? "" : "return 1 --";
    source.resize(len, len < 11 ? ' ' : 'x');
    const Script script(source);
    EXPECT_THAT(Run({"SCRIPT", "LOAD", source}), IsString(script.sha1()))
        << "length " << len;
  }
}

TEST(Sha1Test, KnownVectors) {
  EXPECT_EQ(Sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(
      Sha1Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(Sha1Hex(std::string(1000000, 'a')),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_F(RedisClientTest, ManyThreadsThroughASmallPoolGiveTheExactTotal) {
  constexpr int kThreads = 16;
  constexpr int kIncrements = 500;
  RedisConfig config = TestConfig(/*pool_size=*/4);
  // Generous: 16 threads share 4 connections on a small machine.
  config.command_timeout = absl::Seconds(5);
  std::unique_ptr<Client> client = MustCreate(config);
  ASSERT_NE(client, nullptr);
  const std::string counter = Key("counter");

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        auto reply = client->Command({"INCR", counter});
        if (!reply.ok() || reply->type != Reply::Type::kInteger) {
          if (failures.fetch_add(1) == 0) {
            ADD_FAILURE() << (reply.ok() ? ::testing::PrintToString(*reply)
                                         : reply.status().ToString());
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(Run({"GET", counter}),
              IsString(absl::StrCat(kThreads * kIncrements)));
}

TEST_F(RedisClientTest, NoReplyInTimeIsUnavailableAndTheConnectionIsDropped) {
  RedisConfig config = TestConfig(/*pool_size=*/1);
  config.command_timeout = absl::Milliseconds(200);
  std::unique_ptr<Client> client = MustCreate(config);
  ASSERT_NE(client, nullptr);

  // Redis answers this only after 5 s: nothing ever pushes to the key.
  EXPECT_THAT(client->Command({"BLPOP", Key("never"), "5"}),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("no reply from " + config.addr),
                             HasSubstr("200ms"))));
  // The only connection was dropped, so this reply is not BLPOP's late one.
  EXPECT_THAT(Run(*client, {"ECHO", "after"}), IsString("after"));
}

TEST_F(RedisClientTest, ConnectionClosedByTheServerIsNotReused) {
  std::unique_ptr<Client> client = MustCreate(TestConfig(/*pool_size=*/1));
  ASSERT_NE(client, nullptr);
  const Reply id = Run(*client, {"CLIENT", "ID"});
  ASSERT_EQ(id.type, Reply::Type::kInteger);

  // As after a Redis restart or its idle timeout.
  EXPECT_THAT(Run({"CLIENT", "KILL", "ID", absl::StrCat(id.integer)}),
              IsInteger(1));

  EXPECT_THAT(Run(*client, {"PING"}), IsStatusReply("PONG"));
  const Reply new_id = Run(*client, {"CLIENT", "ID"});
  EXPECT_EQ(new_id.type, Reply::Type::kInteger);
  EXPECT_NE(new_id.integer, id.integer);
}

// --- AsyncClient: calls queued from many threads, pipelined on one connection.

// The replies of `n` async calls, waited for.
class Replies {
 public:
  AsyncClient::Done Slot(int i) {
    return [this, i](absl::StatusOr<Reply> r) {
      std::lock_guard<std::mutex> lock(mu_);
      got_[i] = std::move(r);
      order_.push_back(i);
      cv_.notify_all();
    };
  }
  // Every slot answered within `wait`.
  bool WaitAll(size_t n, absl::Duration wait = absl::Seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoMilliseconds(wait),
                        [&] { return got_.size() == n; });
  }
  std::map<int, absl::StatusOr<Reply>> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  std::vector<int> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, absl::StatusOr<Reply>> got_;
  std::vector<int> order_;
};

std::unique_ptr<AsyncClient> MustCreateAsync(const RedisConfig& config, size_t max_queued = 65536) {
  auto client = AsyncClient::Create(config, max_queued);
  EXPECT_THAT(client, IsOk());
  return client.ok() ? std::move(*client) : nullptr;
}

TEST_F(RedisClientTest, AsyncCallsFromManyThreadsEachGetTheirOwnReply) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 1000;
  std::unique_ptr<AsyncClient> async = MustCreateAsync(TestConfig());
  ASSERT_NE(async, nullptr);
  const std::string counter = Key("counter");
  Replies replies;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const int id = t * kCalls + i;
        // Each call's own key echoes its id back: a reply given to the wrong
        // caller shows.
        async->Command({"SET", Key(absl::StrCat("k", id)), absl::StrCat(id), "GET"},
                       [&, id](absl::StatusOr<Reply>) {});
        async->Command({"INCR", counter}, replies.Slot(id));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(replies.WaitAll(kThreads * kCalls));
  std::set<int64_t> values;
  for (auto& [id, r] : replies.got()) {
    ASSERT_THAT(r, IsOk()) << id;
    ASSERT_EQ(r->type, Reply::Type::kInteger) << id;
    values.insert(r->integer);
  }
  // Every INCR ran once, and each caller got a reply of its own.
  EXPECT_EQ(values.size(), static_cast<size_t>(kThreads * kCalls));
  EXPECT_EQ(*values.begin(), 1);
  EXPECT_EQ(*values.rbegin(), kThreads * kCalls);
  EXPECT_THAT(Run({"GET", Key("k4321")}), IsString("4321"));
}

TEST_F(RedisClientTest, AsyncRepliesComeInTheOrderQueued) {
  std::unique_ptr<AsyncClient> async = MustCreateAsync(TestConfig());
  ASSERT_NE(async, nullptr);
  Replies replies;
  constexpr int kCalls = 3000;
  for (int i = 0; i < kCalls; ++i) {
    async->Command({"RPUSH", Key("list"), absl::StrCat(i)}, replies.Slot(i));
  }
  ASSERT_TRUE(replies.WaitAll(kCalls));
  std::vector<int> order = replies.order();
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(order[i], i);
    ASSERT_THAT(replies.got()[i], IsOk());
    EXPECT_THAT(*replies.got()[i], IsInteger(i + 1));
  }
}

TEST_F(RedisClientTest, AsyncEvalRecoversFromNoscript) {
  std::unique_ptr<AsyncClient> async = MustCreateAsync(TestConfig());
  ASSERT_NE(async, nullptr);
  const Script script(absl::StrCat("-- async ", prefix_, "\nreturn redis.call('INCR', KEYS[1])"));
  EXPECT_THAT(Run({"SCRIPT", "FLUSH"}), IsStatusReply("OK"));
  Replies replies;
  for (int i = 0; i < 3; ++i) async->Eval(script, {Key("counter")}, {}, replies.Slot(i));
  ASSERT_TRUE(replies.WaitAll(3));
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(replies.got()[i], IsOk());
    EXPECT_THAT(*replies.got()[i], IsInteger(i + 1));
  }
}

TEST_F(RedisClientTest, AsyncCallAfterTheServerClosedTheConnectionReconnects) {
  std::unique_ptr<AsyncClient> async = MustCreateAsync(TestConfig());
  ASSERT_NE(async, nullptr);
  Replies first;
  async->Command({"CLIENT", "ID"}, first.Slot(0));
  ASSERT_TRUE(first.WaitAll(1));
  ASSERT_THAT(first.got()[0], IsOk());
  const int64_t id = first.got()[0]->integer;
  EXPECT_THAT(Run({"CLIENT", "KILL", "ID", absl::StrCat(id)}), IsInteger(1));
  Replies second;
  async->Command({"CLIENT", "ID"}, second.Slot(0));
  ASSERT_TRUE(second.WaitAll(1));
  ASSERT_THAT(second.got()[0], IsOk());
  EXPECT_NE(second.got()[0]->integer, id);
}

TEST(AsyncClientDownTest, UnreachableAddressIsUnavailableAndEveryCallIsAnswered) {
  RedisConfig config;
  config.addr = "127.0.0.1:1";  // nothing listens on port 1
  std::unique_ptr<AsyncClient> async = MustCreateAsync(config);
  ASSERT_NE(async, nullptr);
  Replies replies;
  for (int i = 0; i < 100; ++i) async->Command({"PING"}, replies.Slot(i));
  ASSERT_TRUE(replies.WaitAll(100));
  for (auto& [i, r] : replies.got()) {
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable,
                            HasSubstr("redis: cannot connect to 127.0.0.1:1")))
        << i;
  }
}

TEST_F(RedisClientTest, AsyncQueueFullIsUnavailableAtOnceAndDestroyAnswersTheRest) {
  // One slow call holds the connection; what queues behind it is bounded.
  RedisConfig config = TestConfig();
  config.command_timeout = absl::Seconds(5);
  std::unique_ptr<AsyncClient> async = MustCreateAsync(config, /*max_queued=*/2);
  ASSERT_NE(async, nullptr);
  Replies replies;
  async->Command({"BLPOP", Key("never"), "1"}, replies.Slot(0));
  // Until Redis holds the BLPOP, it may still sit in the queue.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (Run({"INFO", "clients"}).str.find("blocked_clients:0") != std::string::npos) {
    ASSERT_LT(absl::Now(), until) << "the BLPOP never reached Redis";
    absl::SleepFor(absl::Milliseconds(10));
  }
  async->Command({"PING"}, replies.Slot(1));
  async->Command({"PING"}, replies.Slot(2));
  async->Command({"PING"}, replies.Slot(3));  // the third waiting: refused
  {
    auto got = replies.got();
    ASSERT_EQ(got.count(3), 1u) << "a call beyond max_queued was not refused at once";
    EXPECT_THAT(got[3], StatusIs(absl::StatusCode::kUnavailable, HasSubstr("wait already")));
  }
  async.reset();  // the queued calls are answered, none is left hanging
  ASSERT_TRUE(replies.WaitAll(4, absl::Seconds(1)));
}

TEST(RedisClientDownTest, UnreachableAddressIsUnavailableNamingIt) {
  RedisConfig config;
  config.addr = "127.0.0.1:1";  // nothing listens on port 1
  config.pool_size = 1;
  auto client = Client::Create(config);  // Redis need not be up for this
  ASSERT_THAT(client, IsOk());

  // Repeated, so a failed connect cannot leak the pool's only slot.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT((*client)->Command({"PING"}),
                StatusIs(absl::StatusCode::kUnavailable,
                         HasSubstr("redis: cannot connect to 127.0.0.1:1")));
  }
  EXPECT_THAT((*client)->Eval(Script("return 1"), {}, {}),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("127.0.0.1:1")));
}

// A Redis loading its append-only file after a restart answers every command
// "-LOADING ..." for seconds. The command did not run: UNAVAILABLE, which
// callers retry, not an error reply they would pass on as INTERNAL.
TEST(RedisClientLoadingTest, LoadingRedisIsUnavailable) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  // One connection; every read of a command is answered LOADING.
  std::thread server([listener] {
    const int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    char buf[4096];
    const std::string loading = "-LOADING Redis is loading the dataset in memory\r\n";
    while (read(conn, buf, sizeof(buf)) > 0) {
      if (write(conn, loading.data(), loading.size()) < 0) break;
    }
    close(conn);
  });

  RedisConfig config;
  config.addr = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  config.pool_size = 1;
  {
    auto client = Client::Create(config);
    ASSERT_THAT(client, IsOk());
    EXPECT_THAT((*client)->Command({"GET", "k"}),
                StatusIs(absl::StatusCode::kUnavailable,
                         AllOf(HasSubstr(config.addr), HasSubstr("LOADING"))));
    // EVALSHA's reply is LOADING too, not NOSCRIPT: no SCRIPT LOAD either.
    EXPECT_THAT((*client)->Eval(Script("return 1"), {}, {}),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("LOADING")));
  }  // closes the connection: the server thread ends
  server.join();
  close(listener);
}

TEST_F(RedisClientTest, WrongPasswordIsUnauthenticatedAndNotLogged) {
  RedisConfig config = TestConfig(/*pool_size=*/1);
  config.password = "not-the-password-8d1f";
  std::unique_ptr<Client> client = MustCreate(config);
  ASSERT_NE(client, nullptr);

  EXPECT_THAT(client->Command({"PING"}),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr(config.addr), HasSubstr("AUTH"),
                             Not(HasSubstr(config.password)))));
}

TEST(RedisConfigTest, DefaultsAreValid) {
  EXPECT_THAT(RedisConfig().Validate(), IsOk());
  RedisConfig config;
  config.addr = "redis.coupon.svc.cluster.local:6380";
  EXPECT_THAT(config.Validate(), IsOk());
  config.addr = "[::1]:6379";
  EXPECT_THAT(config.Validate(), IsOk());
}

TEST(RedisConfigTest, ErrorsNameTheFlag) {
  struct Case {
    void (*mutate)(RedisConfig&);
    const char* flag;
  };
  const Case cases[] = {
      {[](RedisConfig& c) { c.addr = ""; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.addr = "localhost"; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.addr = ":6379"; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.addr = "localhost:"; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.addr = "localhost:http"; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.addr = "localhost:0"; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.addr = "localhost:65536"; }, "--redis_addr: "},
      {[](RedisConfig& c) { c.pool_size = 0; }, "--redis_pool_size: "},
      {[](RedisConfig& c) { c.connect_timeout = absl::ZeroDuration(); },
       "--redis_connect_timeout: "},
      {[](RedisConfig& c) { c.connect_timeout = absl::InfiniteDuration(); },
       "--redis_connect_timeout: "},
      {[](RedisConfig& c) { c.command_timeout = -absl::Seconds(1); },
       "--redis_command_timeout: "},
  };
  for (const Case& c : cases) {
    RedisConfig config;
    c.mutate(config);
    EXPECT_THAT(config.Validate(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(c.flag)))
        << "addr=\"" << config.addr << "\"";
    EXPECT_THAT(Client::Create(config),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(c.flag)));
  }
}

}  // namespace
}  // namespace coupon::redis
