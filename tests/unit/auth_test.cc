#include "gateway/issue/auth.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace coupon::gateway {
namespace {

using ::coupon::testing::IsOk;
using ::coupon::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kToken = "0123456789abcdef0123456789abcdef";
constexpr const char* kOtherToken = "fedcba9876543210fedcba9876543210";

// A tokens file in the test's temporary directory, removed at the end.
class TokensFile {
 public:
  explicit TokensFile(const std::string& content) {
    path_ = ::testing::TempDir() + "admin-tokens-XXXXXX";
    int fd = mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    close(fd);
    Write(content);
  }
  ~TokensFile() { std::remove(path_.c_str()); }
  void Write(const std::string& content) {
    // Replaced, as a Kubernetes Secret update does: a new inode.
    const std::string tmp = path_ + ".new";
    std::ofstream(tmp) << content;
    std::rename(tmp.c_str(), path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Caller Bearer(const std::string& token) {
  Caller c;
  c.authorization = "Bearer " + token;
  return c;
}

Caller Certificate(std::vector<std::string> names) {
  Caller c;
  c.certificate_names = std::move(names);
  return c;
}

std::unique_ptr<AdminAuthorizer> Make(AdminAuthConfig config) {
  auto made = AdminAuthorizer::Create(config);
  EXPECT_THAT(made, IsOk());
  return made.ok() ? std::move(*made) : nullptr;
}

TEST(AdminAuth, AnAllowedTokenPassesAndIsNamedByFingerprintOnly) {
  TokensFile file(std::string("# admins\n\n  ") + kToken + "  \n" + kOtherToken + "\n");
  AdminAuthConfig config;
  config.tokens_file = file.path();
  auto auth = Make(config);
  absl::StatusOr<std::string> who = auth->Authorize(Bearer(kToken));
  ASSERT_THAT(who, IsOk());
  EXPECT_THAT(*who, StartsWith("token sha256:"));
  EXPECT_THAT(*who, Not(HasSubstr(kToken)));
  EXPECT_THAT(auth->Authorize(Bearer(kOtherToken)), IsOk());
  // The scheme is case-insensitive (RFC 6750).
  Caller lower;
  lower.authorization = std::string("bearer ") + kToken;
  EXPECT_THAT(auth->Authorize(lower), IsOk());
}

TEST(AdminAuth, AnonymousWrongOrMalformedIsUnauthenticated) {
  TokensFile file(kToken);
  AdminAuthConfig config;
  config.tokens_file = file.path();
  auto auth = Make(config);
  EXPECT_THAT(auth->Authorize(Caller{}),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("authorization: Bearer <token>")));
  const std::string wrong = std::string(kToken) + "x";
  EXPECT_THAT(auth->Authorize(Bearer(wrong)),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr("not valid"), Not(HasSubstr(wrong)))));
  // A prefix of the token is not the token.
  EXPECT_THAT(auth->Authorize(Bearer(std::string(kToken).substr(0, 16))),
              StatusIs(absl::StatusCode::kUnauthenticated));
  Caller basic;
  basic.authorization = "Basic dXNlcjpwYXNz";
  EXPECT_THAT(auth->Authorize(basic),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("Bearer")));
}

TEST(AdminAuth, CertificateNamesAreCheckedAgainstTheList) {
  AdminAuthConfig config;
  config.client_names = {"admin", "spiffe://coupon/ops"};
  auto auth = Make(config);
  absl::StatusOr<std::string> who = auth->Authorize(Certificate({"admin"}));
  ASSERT_THAT(who, IsOk());
  EXPECT_EQ(*who, "client certificate \"admin\"");
  // A subject alternative name counts as much as the CN.
  EXPECT_THAT(auth->Authorize(Certificate({"ops-box", "spiffe://coupon/ops"})), IsOk());
  // Verified, but not an admin: PERMISSION_DENIED, naming who it was.
  EXPECT_THAT(auth->Authorize(Certificate({"shop-frontend"})),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("\"shop-frontend\"")));
  // Names are exact: no prefix or case folding.
  EXPECT_THAT(auth->Authorize(Certificate({"Admin"})),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(AdminAuth, AValidTokenLetsANonAdminCertificateIn) {
  TokensFile file(kToken);
  AdminAuthConfig config;
  config.tokens_file = file.path();
  config.client_names = {"admin"};
  auto auth = Make(config);
  Caller both = Certificate({"shop-frontend"});
  both.authorization = std::string("Bearer ") + kToken;
  EXPECT_THAT(auth->Authorize(both), IsOk());
  both.authorization = std::string("Bearer ") + kOtherToken;
  EXPECT_THAT(auth->Authorize(both), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(AdminAuth, NothingConfiguredRefusesEveryone) {
  auto auth = Make(AdminAuthConfig{});
  EXPECT_THAT(auth->Authorize(Caller{}),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("no admin identity configured")));
  EXPECT_THAT(auth->Authorize(Bearer(kToken)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(auth->Authorize(Certificate({"admin"})),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(AdminAuth, NoneLetsAnyoneIn) {
  AdminAuthConfig config;
  config.mode = "none";
  auto auth = Make(config);
  EXPECT_THAT(auth->Authorize(Caller{}), IsOk());
}

TEST(AdminAuth, BadConfigurationNamesTheFlagNeverTheToken) {
  AdminAuthConfig config;
  config.mode = "open";
  EXPECT_THAT(config.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("--admin_auth")));
  config.mode = "required";
  config.tokens_file = "/nonexistent/tokens";
  EXPECT_THAT(config.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("--admin_tokens_file"),
                             HasSubstr("/nonexistent/tokens"))));
  TokensFile weak("# ok\nshort-secret\n");
  config.tokens_file = weak.path();
  EXPECT_THAT(config.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("line 2"), Not(HasSubstr("short-secret")))));
  TokensFile empty("# nothing yet\n");
  config.tokens_file = empty.path();
  EXPECT_THAT(config.Validate(), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("holds no token")));
}

TEST(AdminAuth, ARotatedTokensFileIsReRead) {
  TokensFile file(kToken);
  AdminAuthConfig config;
  config.tokens_file = file.path();
  config.reload_interval = absl::ZeroDuration();
  auto auth = Make(config);
  ASSERT_THAT(auth->Authorize(Bearer(kToken)), IsOk());
  file.Write(kOtherToken);
  EXPECT_THAT(auth->Authorize(Bearer(kOtherToken)), IsOk());
  EXPECT_THAT(auth->Authorize(Bearer(kToken)),
              StatusIs(absl::StatusCode::kUnauthenticated));
  // A broken update keeps the tokens read before.
  file.Write("# being rewritten\n");
  EXPECT_THAT(auth->Authorize(Bearer(kOtherToken)), IsOk());
}

}  // namespace
}  // namespace coupon::gateway
