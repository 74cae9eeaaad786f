#pragma once

// Who may call the RPCs that change coupons (CreateCoupon): a caller whose
// verified client certificate names an allowed identity (mutual TLS), or
// one presenting an allowed bearer token (`authorization: Bearer <token>`).
// No gRPC here: the handler extracts a Caller from its context.
//
// Outcomes:
//   - an allowed certificate name or token: OK;
//   - no credential at all, a malformed `authorization`, or a token not on
//     the list: UNAUTHENTICATED (a token is the identity; a wrong one proves
//     nothing);
//   - a verified certificate whose names are not on the list: PERMISSION_DENIED.
// Secure by default: with nothing configured every caller is refused, and
// only an explicit `--admin_auth=none` lets anyone in.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace coupon::gateway {

struct AdminAuthConfig {
  // "required" (the default) or "none" (anyone may create coupons; local
  // development only, logged loudly).
  std::string mode = "required";
  // Allowed bearer tokens, one per line; blank lines and `#` comments are
  // skipped. Re-read when it changes (a rotated Kubernetes Secret), at most
  // every `reload_interval`.
  std::string tokens_file;
  // Allowed client-certificate names: a subject CN or a subject alternative
  // name. Needs mutual TLS (checked by GatewayConfig::Validate).
  std::vector<std::string> client_names;
  absl::Duration reload_interval = absl::Seconds(10);

  // INVALID_ARGUMENT naming the flag; reads the tokens file.
  absl::Status Validate() const;
};

// What a call presents, taken from its gRPC context.
struct Caller {
  // The `authorization` metadata, as sent; nullopt when absent.
  std::optional<std::string> authorization;
  // The CN and subject alternative names of a client certificate the TLS
  // handshake verified; empty without one.
  std::vector<std::string> certificate_names;
};

/// Decides whether a Caller may use the admin RPCs. Thread-safe: gRPC
/// threads call Authorize concurrently; it may re-read the tokens file under
/// a lock. Owned by the gateway, outlives its gRPC service.
class AdminAuthorizer {
 public:
  // Reads the tokens file; fails naming the flag when it cannot.
  static absl::StatusOr<std::unique_ptr<AdminAuthorizer>> Create(
      const AdminAuthConfig& config);

  // On success, how the caller was identified, for the logs (a certificate
  // name, or a token's short fingerprint; never the token).
  absl::StatusOr<std::string> Authorize(const Caller& caller);

  // Minimum length of a token in the file: shorter ones are refused at start.
  static constexpr size_t kMinTokenLength = 16;

 private:
  using Digest = std::array<uint8_t, 32>;  // SHA-256
  struct FileStamp {
    int64_t mtime_ns = 0, size = 0, inode = 0;
    bool operator==(const FileStamp& o) const {
      return mtime_ns == o.mtime_ns && size == o.size && inode == o.inode;
    }
  };

  friend struct AdminAuthConfig;  // Validate reads the tokens file too
  explicit AdminAuthorizer(AdminAuthConfig config) : config_(std::move(config)) {}
  static absl::StatusOr<std::vector<Digest>> ReadTokens(const std::string& path);
  static absl::StatusOr<FileStamp> Stamp(const std::string& path);
  // Re-reads the tokens file when it changed; keeps the old list on error.
  void MaybeReload();
  bool TokenAllowed(const Digest& presented);

  const AdminAuthConfig config_;
  std::mutex mu_;
  std::vector<Digest> tokens_;  // guarded by mu_
  FileStamp stamp_;             // guarded by mu_
  absl::Time next_check_;       // guarded by mu_
};

}  // namespace coupon::gateway
