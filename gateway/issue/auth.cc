#include "gateway/issue/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"

namespace coupon::gateway {
namespace {

std::array<uint8_t, 32> Sha256(absl::string_view data) {
  std::array<uint8_t, 32> digest;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest.data());
  return digest;
}

// A short, one-way name for a token, for the logs.
std::string Fingerprint(const std::array<uint8_t, 32>& digest) {
  return absl::StrFormat("token sha256:%02x%02x%02x%02x", digest[0], digest[1],
                         digest[2], digest[3]);
}

}  // namespace

absl::Status AdminAuthConfig::Validate() const {
  if (mode != "required" && mode != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--admin_auth: must be required or none, got \"", mode, "\""));
  }
  for (const std::string& name : client_names) {
    if (name.empty()) {
      return absl::InvalidArgumentError("--admin_client_names: has an empty name");
    }
  }
  if (reload_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("admin reload_interval: must not be negative");
  }
  if (!tokens_file.empty()) {
    absl::StatusOr<std::vector<std::array<uint8_t, 32>>> tokens =
        AdminAuthorizer::ReadTokens(tokens_file);
    if (!tokens.ok()) return tokens.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AdminAuthorizer::Digest>> AdminAuthorizer::ReadTokens(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--admin_tokens_file: cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::vector<Digest> tokens;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || token.front() == '#') continue;
    // The line number, never the token, names a bad one.
    if (token.size() < kMinTokenLength) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--admin_tokens_file: the token on line ", n, " of \"", path,
          "\" is shorter than ", kMinTokenLength,
          " characters; use a random one (openssl rand -hex 32)"));
    }
    if (std::any_of(token.begin(), token.end(), [](char c) {
          return absl::ascii_isspace(static_cast<unsigned char>(c)) ||
                 !absl::ascii_isprint(static_cast<unsigned char>(c));
        })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--admin_tokens_file: the token on line ", n, " of \"", path,
          "\" has a space or a control character"));
    }
    tokens.push_back(Sha256(token));
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin_tokens_file: error reading \"", path, "\""));
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin_tokens_file: \"", path, "\" holds no token"));
  }
  return tokens;
}

absl::StatusOr<AdminAuthorizer::FileStamp> AdminAuthorizer::Stamp(
    const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot stat \"", path, "\": ", std::strerror(errno)));
  }
  FileStamp stamp;
  stamp.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                   st.st_mtim.tv_nsec;
  stamp.size = st.st_size;
  stamp.inode = static_cast<int64_t>(st.st_ino);
  return stamp;
}

absl::StatusOr<std::unique_ptr<AdminAuthorizer>> AdminAuthorizer::Create(
    const AdminAuthConfig& config) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unique_ptr<AdminAuthorizer> self(new AdminAuthorizer(config));
  if (!config.tokens_file.empty()) {
    absl::StatusOr<FileStamp> stamp = Stamp(config.tokens_file);
    absl::StatusOr<std::vector<Digest>> tokens = ReadTokens(config.tokens_file);
    if (!tokens.ok()) return tokens.status();
    self->tokens_ = std::move(*tokens);
    if (stamp.ok()) self->stamp_ = *stamp;
    self->next_check_ = absl::Now() + config.reload_interval;
  }
  if (config.mode == "none") {
    LOG(WARNING) << "*** --admin_auth=none: ANY caller may create coupons. "
                    "Local development only; in production set "
                    "--admin_tokens_file or --admin_client_names. ***";
  } else if (config.tokens_file.empty() && config.client_names.empty()) {
    LOG(WARNING) << "admin auth: no admin identity configured "
                    "(--admin_tokens_file, --admin_client_names): CreateCoupon "
                    "is refused for every caller";
  } else {
    LOG(INFO) << "admin auth: " << self->tokens_.size() << " bearer token(s)"
              << (config.tokens_file.empty() ? ""
                                             : absl::StrCat(" from ", config.tokens_file))
              << (config.client_names.empty()
                      ? ""
                      : absl::StrCat(", client certificates ",
                                     absl::StrJoin(config.client_names, ",")));
  }
  return self;
}

void AdminAuthorizer::MaybeReload() {
  if (config_.tokens_file.empty()) return;
  const absl::Time now = absl::Now();
  if (now < next_check_) return;
  next_check_ = now + config_.reload_interval;
  absl::StatusOr<FileStamp> stamp = Stamp(config_.tokens_file);
  if (stamp.ok() && *stamp == stamp_) return;
  absl::StatusOr<std::vector<Digest>> tokens = ReadTokens(config_.tokens_file);
  if (!stamp.ok() || !tokens.ok()) {
    // A Secret being swapped, or a bad edit: keep serving with what we had.
    LOG_EVERY_N(WARNING, 10) << "admin auth: keeping the " << tokens_.size()
                             << " token(s) read before: "
                             << (stamp.ok() ? tokens.status() : stamp.status());
    return;
  }
  LOG(INFO) << "admin auth: re-read " << config_.tokens_file << ": "
            << tokens->size() << " token(s)";
  tokens_ = std::move(*tokens);
  stamp_ = *stamp;
}

bool AdminAuthorizer::TokenAllowed(const Digest& presented) {
  std::lock_guard<std::mutex> lock(mu_);
  MaybeReload();
  // Every digest is compared in full, whatever matched: the time taken says
  // nothing about the token. Comparing digests also hides the lengths.
  int matched = 0;
  for (const Digest& allowed : tokens_) {
    matched |= CRYPTO_memcmp(allowed.data(), presented.data(), allowed.size()) == 0;
  }
  return matched != 0;
}

absl::StatusOr<std::string> AdminAuthorizer::Authorize(const Caller& caller) {
  if (config_.mode == "none") return std::string("anyone (--admin_auth=none)");

  for (const std::string& name : caller.certificate_names) {
    if (std::find(config_.client_names.begin(), config_.client_names.end(),
                  name) != config_.client_names.end()) {
      return absl::StrCat("client certificate \"", name, "\"");
    }
  }
  const bool nothing_configured =
      config_.tokens_file.empty() && config_.client_names.empty();
  const std::string none_configured =
      nothing_configured
          ? "; this gateway has no admin identity configured "
            "(--admin_tokens_file, --admin_client_names), so it refuses "
            "every caller"
          : "";
  if (caller.authorization) {
    absl::string_view value = absl::StripAsciiWhitespace(*caller.authorization);
    // RFC 6750: the scheme is case-insensitive.
    if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      return absl::UnauthenticatedError(
          "authorization: expected \"Bearer <token>\"");
    }
    const Digest digest = Sha256(absl::StripAsciiWhitespace(value.substr(7)));
    if (TokenAllowed(digest)) return Fingerprint(digest);
    return absl::UnauthenticatedError(
        absl::StrCat("authorization: the bearer token is not valid", none_configured));
  }
  if (!caller.certificate_names.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "client certificate \"", caller.certificate_names.front(),
        "\" may not change coupons", none_configured));
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "this call needs an admin identity: send `authorization: Bearer <token>`",
      config_.client_names.empty() ? "" : " or use an allowed client certificate",
      none_configured));
}

}  // namespace coupon::gateway
