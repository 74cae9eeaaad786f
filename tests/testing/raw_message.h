#pragma once

// Protobuf wire data built field by field, without a schema, to send what the
// typed setters cannot: a string field that is not UTF-8, a known field with
// the wrong wire type.

#include <cstdint>
#include <string>

#include "google/protobuf/unknown_field_set.h"

namespace coupon::testing {

class RawMessage {
 public:
  RawMessage& Int(int number, int64_t value) {
    fields_.AddVarint(number, static_cast<uint64_t>(value));
    return *this;
  }
  RawMessage& Bytes(int number, const std::string& value) {
    fields_.AddLengthDelimited(number, value);
    return *this;
  }
  std::string Serialize() const {
    std::string out;
    fields_.SerializeToString(&out);
    return out;
  }

 private:
  google::protobuf::UnknownFieldSet fields_;
};

}  // namespace coupon::testing
