// ParseProto (common/wire/proto_parse.h) on any bytes as each public API request,
// as the gateway parses them (gateway/api/parsed_request.h), then the request's
// proto -> domain conversions. ParseProto never crashes, never accepts what
// protobuf refuses, and names a field of the request (or the message type)
// whenever it refuses.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "common/wire/proto_convert.h"
#include "common/wire/proto_parse.h"
#include "coupon/v1/coupon_service.pb.h"
#include "glog/logging.h"

namespace coupon {
namespace {

// The field path an error starts with: "user_id", "request_ids[3]",
// "starts_at.nanos", or the message's full name.
void CheckNamesAField(const absl::Status& status,
                      const google::protobuf::Descriptor& type) {
  CHECK(absl::IsInvalidArgument(status)) << status;
  absl::string_view message = status.message();
  const size_t colon = message.find(": ");
  CHECK(colon != absl::string_view::npos) << status;
  absl::string_view path = message.substr(0, colon);
  if (path == type.full_name()) return;
  const size_t end = path.find_first_of("[.");
  const std::string top(path.substr(0, end));
  CHECK(type.FindFieldByName(top) != nullptr) << status;
}

std::unique_ptr<google::protobuf::Message> NewRequest(uint8_t which) {
  switch (which % 6) {
    case 0:
      return std::make_unique<v1::CreateCouponRequest>();
    case 1:
      return std::make_unique<v1::GetCouponRequest>();
    case 2:
      return std::make_unique<v1::IssueCouponRequest>();
    case 3:
      return std::make_unique<v1::WatchIssueResultsRequest>();
    case 4:
      return std::make_unique<v1::GetIssueResultRequest>();
    default:
      return std::make_unique<v1::ListUserCouponsRequest>();
  }
}

}  // namespace
}  // namespace coupon

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coupon;
  if (size == 0) return 0;
  std::unique_ptr<google::protobuf::Message> request = NewRequest(data[0]);
  const absl::string_view bytes(reinterpret_cast<const char*>(data) + 1,
                                size - 1);
  absl::Status parsed = ParseProto(bytes, request.get());

  std::unique_ptr<google::protobuf::Message> plain(request->New());
  const bool protobuf_parsed =
      plain->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (!parsed.ok()) {
    CheckNamesAField(parsed, *request->GetDescriptor());
    if (absl::StrContains(parsed.message(), "UTF-8")) CHECK(!protobuf_parsed);
    return 0;
  }
  CHECK(protobuf_parsed) << "ParseProto accepted what protobuf refuses";
  // What parsed serializes to bytes that parse to the same message.
  std::unique_ptr<google::protobuf::Message> again(request->New());
  CHECK(ParseProto(request->SerializeAsString(), again.get()).ok());
  CHECK_EQ(again->SerializeAsString(), request->SerializeAsString());

  if (auto* create = dynamic_cast<v1::CreateCouponRequest*>(request.get())) {
    for (const auto* ts : {&create->starts_at(), &create->ends_at()}) {
      absl::StatusOr<UnixMicros> micros = FromProtoTime("starts_at", *ts);
      if (micros.ok()) CHECK_EQ(ToProtoTime(*micros).seconds(), ts->seconds());
    }
  }
  return 0;
}
