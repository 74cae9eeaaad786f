#pragma once

// Every flag of ours has an environment-variable twin named after it in upper
// case (--kafka_brokers <-> KAFKA_BROKERS), for Kubernetes. Precedence:
// command line > environment > default.

#include <vector>

namespace coupon {

// Parses the command line after applying environment overrides to the flags
// defined in files under this repository. Exits with a message naming the
// variable when an environment value does not parse. Returns the positional
// arguments, like absl::ParseCommandLine.
std::vector<char*> ParseFlagsWithEnv(int argc, char** argv);

}  // namespace coupon
