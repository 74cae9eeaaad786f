// The gateway's security through real gRPC: TLS and mutual TLS on the port
// (certificates from scripts/tls-certs), who may create coupons, and the
// per-user IssueCoupon limit.

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/issuance_stack.h"

namespace coupon::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// scripts/tls-certs run once into a fresh directory: ca, server (localhost,
// 127.0.0.1), admin and client certificates.
const std::string& CertsDir() {
  static const std::string dir = [] {
    std::string d = ::testing::TempDir() + "coupon-tls-XXXXXX";
    CHECK(mkdtemp(d.data())) << "cannot make " << d;
    const std::string cmd = absl::StrCat(COUPON_SOURCE_DIR, "/scripts/tls-certs ", d,
                                         " >/dev/null 2>&1");
    CHECK_EQ(std::system(cmd.c_str()), 0) << cmd;
    return d;
  }();
  return dir;
}

std::string Pem(const std::string& name) {
  std::ifstream in(absl::StrCat(CertsDir(), "/", name));
  CHECK(in) << "missing " << name << " in " << CertsDir();
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// TLS client credentials trusting the test CA, with a client certificate
// when `client` names one ("admin", "client").
std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& client = "",
                                              const std::string& root = "ca.crt") {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = Pem(root);
  if (!client.empty()) {
    options.pem_cert_chain = Pem(client + ".crt");
    options.pem_private_key = Pem(client + ".key");
  }
  return grpc::SslCredentials(options);
}

std::unique_ptr<v1::CouponService::Stub> Stub(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials,
    bool with_admin_token = false) {
  const std::string target = absl::StrCat("127.0.0.1:", port);
  return v1::CouponService::NewStub(
      with_admin_token ? AdminChannel(target, credentials)
                       : grpc::CreateChannel(target, credentials));
}

grpc::Status Create(v1::CouponService::Stub& stub, v1::Coupon* out = nullptr,
                    const std::string& bearer = "") {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!bearer.empty()) ctx.AddMetadata("authorization", "Bearer " + bearer);
  v1::CreateCouponRequest req;
  req.set_name("security");
  req.set_total_quantity(3);
  v1::Coupon coupon;
  return stub.CreateCoupon(&ctx, req, out ? out : &coupon);
}

// A read anyone may make; NOT_FOUND proves the call reached the handler.
grpc::Status Read(v1::CouponService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::GetCouponRequest req;
  req.set_coupon_id(1LL << 50);
  v1::Coupon out;
  return stub.GetCoupon(&ctx, req, &out);
}

TEST(SecurityTest, AdminRpcsNeedAnAdminIdentityReadsDoNot) {
  IssuanceStack stack;
  const int port = stack.port(stack.AddGateway());
  auto anonymous = Stub(port, grpc::InsecureChannelCredentials());

  grpc::Status s = Create(*anonymous);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("authorization: Bearer <token>"));
  s = Create(*anonymous, nullptr, AdminToken() + "-not");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("not valid"));

  v1::Coupon created;
  s = Create(*anonymous, &created, AdminToken());
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(created.coupon_id(), 0);
  s = Read(*anonymous);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

TEST(SecurityTest, TlsServesTrustingClientsAndRefusesPlainText) {
  IssuanceStack stack;
  const int port = stack.port(stack.AddGateway(
      absl::Minutes(1), "kafka", [](gateway::GatewayConfig& c) {
        c.tls.cert_file = CertsDir() + "/server.crt";
        c.tls.key_file = CertsDir() + "/server.key";
      }));

  grpc::Status s = Read(*Stub(port, Tls()));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  v1::Coupon created;
  s = Create(*Stub(port, Tls(), /*with_admin_token=*/true), &created);
  EXPECT_TRUE(s.ok()) << s.error_message();

  s = Read(*Stub(port, grpc::InsecureChannelCredentials()));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // A client that does not trust the server's issuer does not connect.
  s = Read(*Stub(port, Tls("", /*root=*/"client.crt")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

// Under mutual TLS the allow list is matched against the certificate's CN
// and its subject alternative names, checked one gateway each.
TEST(SecurityTest, MutualTlsAdminsByCertificateNameOrToken) {
  for (const std::string admin_name : {"admin", "admin.clients.coupon.local"}) {
    SCOPED_TRACE(admin_name);
    IssuanceStack stack;
    const int port = stack.port(stack.AddGateway(
        absl::Minutes(1), "kafka", [&](gateway::GatewayConfig& c) {
          c.tls.cert_file = CertsDir() + "/server.crt";
          c.tls.key_file = CertsDir() + "/server.key";
          c.tls.client_ca_file = CertsDir() + "/ca.crt";
          c.admin.client_names = {admin_name};
        }));

    EXPECT_TRUE(Create(*Stub(port, Tls("admin"))).ok());

    auto client = Stub(port, Tls("client"));
    grpc::Status s = Create(*client);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("\"client\""));
    s = Read(*client);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    // The token still works, from any verified client.
    s = Create(*Stub(port, Tls("client"), /*with_admin_token=*/true));
    EXPECT_TRUE(s.ok()) << s.error_message();

    // No client certificate: no connection at all.
    s = Read(*Stub(port, Tls()));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  }
}

TEST(SecurityTest, AUserOverTheLimitIsResourceExhaustedOthersAreNot) {
  IssuanceStack stack;
  stack.AddGateway(absl::Minutes(1), "kafka", [](gateway::GatewayConfig& c) {
    // Two calls, then practically none: no timing in the assertions.
    c.user_rate_limit.per_second = 0.001;
    c.user_rate_limit.burst = 2;
  });
  const int64_t coupon = stack.CreateCoupon(10).coupon_id();
  const std::string run = absl::StrCat("limit-", coupon);

  auto issue = [&](const std::string& user, int n) {
    std::vector<IssueCall> calls = {{user, absl::StrCat(run, "-", user, "-", n), {}, {}}};
    IssueConcurrently(stack.stub(), coupon, calls);
    return calls[0].status;
  };
  EXPECT_TRUE(issue("bot", 1).ok());
  EXPECT_TRUE(issue("bot", 2).ok());
  grpc::Status s = issue("bot", 3);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(),
              AllOf(HasSubstr("user_id: \"bot\""), HasSubstr("2 IssueCoupon calls at once"),
                    HasSubstr("0.001 per second")));
  EXPECT_TRUE(issue("alice", 1).ok());
}

}  // namespace
}  // namespace coupon::testing
