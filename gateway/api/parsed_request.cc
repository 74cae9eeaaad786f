#include "gateway/api/parsed_request.h"

#include "absl/strings/str_cat.h"
#include "common/wire/proto_parse.h"

namespace coupon::gateway {

absl::Status ParseRequest(const grpc::ByteBuffer& buffer,
                          google::protobuf::Message* message) {
  grpc::Slice bytes;
  // One slice (the usual small request) is read in place; otherwise copied.
  if (!buffer.Valid() || (!buffer.TrySingleSlice(&bytes).ok() &&
                          !buffer.DumpToSingleSlice(&bytes).ok())) {
    return absl::InvalidArgumentError(absl::StrCat(
        message->GetDescriptor()->full_name(), ": the request has no message"));
  }
  return ParseProto(
      absl::string_view(reinterpret_cast<const char*>(bytes.begin()),
                        bytes.size()),
      message);
}

}  // namespace coupon::gateway
