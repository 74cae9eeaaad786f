#pragma once

// TLS on the gateway's gRPC port, from PEM files (a Kubernetes Secret mount,
// or scripts/tls-certs locally). Plain text when no certificate is set;
// mutual TLS, with client certificates required and verified, when a client
// CA is set too. The files are checked at start (readable, parse, the key
// matches the certificate, not expired) and then re-read every minute by
// gRPC, so a renewed certificate is served without a restart.

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace grpc {
class ServerCredentials;
}

namespace coupon::gateway {

struct ServerTlsConfig {
  std::string cert_file;       // certificate chain, server first
  std::string key_file;        // its private key, unencrypted
  std::string client_ca_file;  // CA bundle for client certificates

  bool enabled() const { return !cert_file.empty(); }
  bool mutual() const { return !client_ca_file.empty(); }
  // INVALID_ARGUMENT naming the flag and the file.
  absl::Status Validate() const;
  // "plaintext", "TLS" or "mutual TLS", for the logs.
  std::string Describe() const;
};

// Insecure credentials when TLS is off. `config` must be valid.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const ServerTlsConfig& config);

}  // namespace coupon::gateway
