#include "common/service/flags_env.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/service/redact.h"

namespace coupon {

namespace {

// Our binaries define their flags in main.cc only.
bool IsOurs(absl::string_view filename) {
  return absl::EndsWith(filename, "/main.cc");
}

}  // namespace

std::vector<char*> ParseFlagsWithEnv(int argc, char** argv, const char* usage) {
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = IsOurs;
  config.contains_help_flags = IsOurs;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsOurs(flag->Filename())) continue;
    const std::string env = absl::AsciiStrToUpper(std::string(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      // A secret's value is not echoed, even when it does not parse.
      const std::string shown = IsSecretKey(name) ? std::string(kRedacted) : value;
      std::fprintf(stderr, "environment variable %s=\"%s\": %s\n", env.c_str(),
                   shown.c_str(), error.c_str());
      std::exit(2);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace coupon
