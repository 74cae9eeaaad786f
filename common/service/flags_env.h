#pragma once

// Every flag of ours has an environment-variable twin named after it in upper
// case (--kafka_brokers <-> KAFKA_BROKERS), for Kubernetes. Precedence:
// command line > environment > default.

#include <vector>

namespace coupon {

// Sets `usage` as the program's --help text (which then lists the flags
// defined in main.cc), applies environment overrides to those flags, and
// parses the command line. Exits with a message naming the variable when an
// environment value does not parse. Returns the positional arguments, like
// absl::ParseCommandLine.
std::vector<char*> ParseFlagsWithEnv(int argc, char** argv, const char* usage);

}  // namespace coupon
