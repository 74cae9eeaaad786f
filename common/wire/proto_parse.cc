#include "common/wire/proto_parse.h"

#include <climits>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/domain/validation.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace coupon {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Protobuf's own parser stops at this nesting depth.
constexpr int kMaxDepth = 100;

absl::Status Invalid(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

absl::string_view WireTypeName(UnknownField::Type type) {
  switch (type) {
    case UnknownField::TYPE_VARINT:
      return "a varint";
    case UnknownField::TYPE_FIXED32:
      return "a 32-bit value";
    case UnknownField::TYPE_FIXED64:
      return "a 64-bit value";
    case UnknownField::TYPE_LENGTH_DELIMITED:
      return "a length-delimited value";
    case UnknownField::TYPE_GROUP:
      return "a group";
  }
  return "an unknown wire type";
}

// The wire type protobuf's parser expects for `field` (a packable repeated
// field also takes a length-delimited packed run).
UnknownField::Type WireTypeOf(const FieldDescriptor& field) {
  switch (field.type()) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return UnknownField::TYPE_FIXED64;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return UnknownField::TYPE_FIXED32;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return UnknownField::TYPE_LENGTH_DELIMITED;
    case FieldDescriptor::TYPE_GROUP:
      return UnknownField::TYPE_GROUP;
    default:  // integers, bool, enum
      return UnknownField::TYPE_VARINT;
  }
}

// The first field of `fields` (one message's wire data, read without a
// schema) that protobuf refuses or would silently drop as `type`: a string
// that is not UTF-8, a known field of the wrong wire type, a nested message
// that does not parse. OK when there is none.
absl::Status Diagnose(const UnknownFieldSet& fields, const Descriptor& type,
                      const std::string& prefix, int depth) {
  std::map<int, int> occurrences;  // of each repeated field, for its index
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& f = fields.field(i);
    const FieldDescriptor* field = type.FindFieldByNumber(f.number());
    if (field == nullptr) continue;  // unknown to this build: kept as is
    const UnknownField::Type want = WireTypeOf(*field);
    const bool packed =
        field->is_packable() && f.type() == UnknownField::TYPE_LENGTH_DELIMITED;
    std::string path = absl::StrCat(prefix, field->name());
    if (field->is_repeated() && !packed) {
      absl::StrAppend(&path, "[", occurrences[f.number()]++, "]");
    }
    if (f.type() != want && !packed) {
      return Invalid(path, absl::StrCat("has the wrong wire type (",
                                        WireTypeName(f.type()), " where ",
                                        WireTypeName(want), " belongs)"));
    }
    if (packed) continue;
    if (field->type() == FieldDescriptor::TYPE_STRING &&
        !IsValidUtf8(f.length_delimited())) {
      return Invalid(path, "is not valid UTF-8");
    }
    if (field->message_type() == nullptr || depth >= kMaxDepth) continue;
    if (f.type() == UnknownField::TYPE_GROUP) {
      absl::Status s =
          Diagnose(f.group(), *field->message_type(), path + ".", depth + 1);
      if (!s.ok()) return s;
      continue;
    }
    UnknownFieldSet nested;
    if (!nested.ParseFromString(f.length_delimited())) {
      return Invalid(path, absl::StrCat("is not a valid ",
                                        field->message_type()->full_name()));
    }
    absl::Status s =
        Diagnose(nested, *field->message_type(), path + ".", depth + 1);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// True when `message` or a message inside it kept unknown fields: the only
// way a known field of the wrong wire type shows after a successful parse.
bool HasUnknownFields(const Message& message) {
  const Reflection& reflection = *message.GetReflection();
  if (!reflection.GetUnknownFields(message).empty()) return true;
  const Descriptor& type = *message.GetDescriptor();
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor* field = type.field(i);
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int k = 0; k < reflection.FieldSize(message, field); ++k) {
        if (HasUnknownFields(
                reflection.GetRepeatedMessage(message, field, k))) {
          return true;
        }
      }
    } else if (reflection.HasField(message, field) &&
               HasUnknownFields(reflection.GetMessage(message, field))) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::Status ParseProto(absl::string_view bytes, Message* message) {
  const Descriptor& type = *message->GetDescriptor();
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return Invalid(type.full_name(), "is too large");
  }
  const int size = static_cast<int>(bytes.size());
  const bool parsed = message->ParseFromArray(bytes.data(), size);
  if (parsed && !HasUnknownFields(*message)) return absl::OkStatus();
  UnknownFieldSet fields;
  if (fields.ParseFromArray(bytes.data(), size)) {
    absl::Status s = Diagnose(fields, type, "", 0);
    if (!s.ok()) {
      message->Clear();
      return s;
    }
  }
  if (parsed) return absl::OkStatus();
  message->Clear();
  return Invalid(type.full_name(), "is not valid protobuf wire data");
}

}  // namespace coupon
