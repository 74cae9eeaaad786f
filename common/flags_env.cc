#include "common/flags_env.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace coupon {

std::vector<char*> ParseFlagsWithEnv(int argc, char** argv) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    // Only our own flags: abseil's and librarys' flags keep their defaults.
    if (absl::StrContains(flag->Filename(), "/absl/")) continue;
    const std::string env = absl::AsciiStrToUpper(std::string(name));
    const char* value = std::getenv(env.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "environment variable %s=\"%s\": %s\n", env.c_str(),
                   value, error.c_str());
      std::exit(2);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace coupon
