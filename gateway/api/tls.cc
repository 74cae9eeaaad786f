#include "gateway/api/tls.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace coupon::gateway {
namespace {

// gRPC checks the files for changes this often.
constexpr unsigned int kRefreshSeconds = 60;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

absl::Status Bad(absl::string_view flag, const std::string& path,
                 absl::string_view why) {
  ERR_clear_error();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": \"", path, "\" ", why));
}

// Reads the first certificate of a PEM file (the leaf of a chain) and
// checks it is in date; `*count` is how many certificates the file holds.
absl::StatusOr<X509Ptr> ReadCertificates(absl::string_view flag,
                                         const std::string& path, int* count) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return Bad(flag, path, "cannot be read");
  X509Ptr first;
  *count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509Ptr owned(cert);
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
      return Bad(flag, path,
                 absl::StrCat("holds an expired certificate (number ",
                              *count + 1, ")"));
    }
    if (!first) first = std::move(owned);
    ++*count;
  }
  ERR_clear_error();  // the end of the file reads as an error
  if (*count == 0) return Bad(flag, path, "holds no PEM certificate");
  return first;
}

}  // namespace

absl::Status ServerTlsConfig::Validate() const {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert_file, --tls_key_file: set both or neither");
  }
  if (!enabled()) {
    if (mutual()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca_file: needs --tls_cert_file and --tls_key_file "
          "(mutual TLS is TLS first)");
    }
    return absl::OkStatus();
  }
  int count = 0;
  absl::StatusOr<X509Ptr> cert = ReadCertificates("tls_cert_file", cert_file, &count);
  if (!cert.ok()) return cert.status();

  BioPtr bio(BIO_new_file(key_file.c_str(), "r"));
  if (!bio) return Bad("tls_key_file", key_file, "cannot be read");
  // No passphrase callback: an encrypted key fails here instead of
  // prompting on a terminal.
  KeyPtr key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!key) {
    return Bad("tls_key_file", key_file,
               "holds no unencrypted PEM private key");
  }
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    return Bad("tls_key_file", key_file,
               absl::StrCat("does not match the certificate in \"", cert_file,
                            "\""));
  }
  if (mutual()) {
    absl::StatusOr<X509Ptr> ca =
        ReadCertificates("tls_client_ca_file", client_ca_file, &count);
    if (!ca.ok()) return ca.status();
  }
  return absl::OkStatus();
}

std::string ServerTlsConfig::Describe() const {
  if (!enabled()) return "plaintext";
  return mutual() ? "mutual TLS (client certificates required)" : "TLS";
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const ServerTlsConfig& config) {
  if (!config.enabled()) return grpc::InsecureServerCredentials();
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          config.key_file, config.cert_file, config.client_ca_file,
          kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (config.mutual()) {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace coupon::gateway
