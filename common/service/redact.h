#pragma once

// Keeping secrets out of logs, error messages and status texts. Every line
// that prints configuration (a PostgreSQL DSN, librdkafka properties, a flag's
// value) goes through these first; a status text that may quote a connection
// string (libpq's errors) is scrubbed of the secrets it was built from.
//
// Over-redaction is fine, under-redaction is not: keys are matched by what
// they contain (`sasl.password`, `sslpassword`, `ssl.key.pem`, ...).

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace coupon {

// What a secret is replaced with.
inline constexpr absl::string_view kRedacted = "***";

// Whether a configuration key (a libpq keyword, a librdkafka property, a flag
// or environment variable name) holds a secret. Case-insensitive.
bool IsSecretKey(absl::string_view key);

// A libpq connection string, URI (`postgresql://user:pw@host/db?k=v`) or
// key=value (`host=h password='p w'`), with the password and every other
// secret parameter replaced by kRedacted. Everything else is kept, so the
// line still shows host, database and sslmode.
std::string RedactDsn(absl::string_view dsn);

// The secret values in `dsn` as written (and percent-decoded, for URIs), to
// scrub from messages that may quote them (see ScrubSecrets).
std::vector<std::string> DsnSecrets(absl::string_view dsn);

// "k=v,k=***": librdkafka properties with secret values replaced.
std::string RedactProperties(const std::map<std::string, std::string>& props);

// `text` with every occurrence of each secret replaced by kRedacted. Secrets
// shorter than 4 characters are left alone: replacing them would garble the
// message, and such a secret is no secret.
std::string ScrubSecrets(absl::string_view text,
                         const std::vector<std::string>& secrets);

}  // namespace coupon
