#pragma once

// Parsing protobuf bytes from outside (API requests, events) with an error a
// person can act on. Protobuf's own parse only says yes or no, and refuses a
// proto3 string field holding invalid UTF-8 without saying which one.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace coupon {

// Parses `bytes` into `message` (cleared first). On failure returns
// INVALID_ARGUMENT naming the first bad field in wire order, as the field
// checks of common/domain/validation.h do:
//   "user_id: is not valid UTF-8", "request_ids[1]: is not valid UTF-8",
//   "starts_at.nanos: has the wrong wire type (a length-delimited value where
//   a varint belongs)";
// or naming the message type when the bytes are not protobuf at all.
// A known field sent with the wrong wire type is an error too, although
// protobuf would keep it as an unknown field and leave the field unset.
// Fields unknown to `message` (a newer client's) are kept and accepted.
absl::Status ParseProto(absl::string_view bytes,
                        google::protobuf::Message* message);

}  // namespace coupon
