#include "common/service/redact.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace coupon {
namespace {

// [begin, end) of one value inside a connection string.
using Span = std::pair<size_t, size_t>;

bool IsUri(absl::string_view dsn) {
  return absl::StartsWith(dsn, "postgresql://") ||
         absl::StartsWith(dsn, "postgres://");
}

std::string PercentDecode(absl::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = absl::ascii_tolower(static_cast<unsigned char>(c));
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 &&
        hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The spans of secret values in a URI: the password of the user info and
// every secret query parameter.
std::vector<Span> UriSecretSpans(absl::string_view dsn) {
  std::vector<Span> spans;
  const size_t start = dsn.find("://") + 3;
  const size_t authority_end = std::min(dsn.find('/', start), dsn.find('?', start));
  const absl::string_view authority =
      dsn.substr(start, authority_end == absl::string_view::npos
                            ? absl::string_view::npos
                            : authority_end - start);
  // user:password@host — the last '@' ends the user info (an '@' in a
  // password should be percent-encoded, but do not count on it).
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    const size_t colon = authority.substr(0, at).find(':');
    if (colon != absl::string_view::npos) {
      spans.emplace_back(start + colon + 1, start + at);
    }
  }
  const size_t query = dsn.find('?', start);
  if (query == absl::string_view::npos) return spans;
  size_t pos = query + 1;
  while (pos <= dsn.size()) {
    size_t amp = dsn.find('&', pos);
    if (amp == absl::string_view::npos) amp = dsn.size();
    const absl::string_view param = dsn.substr(pos, amp - pos);
    const size_t eq = param.find('=');
    if (eq != absl::string_view::npos &&
        IsSecretKey(PercentDecode(param.substr(0, eq)))) {
      spans.emplace_back(pos + eq + 1, amp);
    }
    pos = amp + 1;
  }
  return spans;
}

// The spans of secret values in `key = value key='quoted \' value'`, the
// quotes excluded.
std::vector<Span> KeywordSecretSpans(absl::string_view dsn) {
  std::vector<Span> spans;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < dsn.size() && absl::ascii_isspace(static_cast<unsigned char>(dsn[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= dsn.size()) break;
    const size_t key_begin = i;
    while (i < dsn.size() && dsn[i] != '=' &&
           !absl::ascii_isspace(static_cast<unsigned char>(dsn[i]))) {
      ++i;
    }
    const absl::string_view key = dsn.substr(key_begin, i - key_begin);
    skip_space();
    if (i >= dsn.size() || dsn[i] != '=') {
      // Not key=value: libpq refuses it. Hide the rest, it might be a
      // value whose key was mistyped.
      spans.emplace_back(key_begin, dsn.size());
      break;
    }
    ++i;
    skip_space();
    size_t value_begin = i, value_end = i;
    if (i < dsn.size() && dsn[i] == '\'') {
      value_begin = ++i;
      while (i < dsn.size() && dsn[i] != '\'') i += dsn[i] == '\\' ? 2 : 1;
      value_end = std::min(i, dsn.size());
      if (i < dsn.size()) ++i;  // the closing quote
    } else {
      while (i < dsn.size() && !absl::ascii_isspace(static_cast<unsigned char>(dsn[i]))) {
        i += dsn[i] == '\\' ? 2 : 1;
      }
      value_end = i = std::min(i, dsn.size());
    }
    if (IsSecretKey(key)) spans.emplace_back(value_begin, value_end);
  }
  return spans;
}

std::vector<Span> SecretSpans(absl::string_view dsn) {
  return IsUri(dsn) ? UriSecretSpans(dsn) : KeywordSecretSpans(dsn);
}

}  // namespace

bool IsSecretKey(absl::string_view key) {
  const std::string k = absl::AsciiStrToLower(key);
  for (absl::string_view word :
       {"password", "passwd", "secret", "token", "jaas", "credential",
        "private"}) {
    if (absl::StrContains(k, word)) return true;
  }
  // librdkafka's ssl.key.pem is the private key itself; sasl.oauthbearer.config
  // may carry a client secret.
  return absl::EndsWith(k, "key.pem") || k == "sasl.oauthbearer.config";
}

std::string RedactDsn(absl::string_view dsn) {
  std::string out;
  size_t pos = 0;
  for (const auto& [begin, end] : SecretSpans(dsn)) {
    absl::StrAppend(&out, dsn.substr(pos, begin - pos), kRedacted);
    pos = end;
  }
  absl::StrAppend(&out, dsn.substr(pos));
  return out;
}

std::vector<std::string> DsnSecrets(absl::string_view dsn) {
  std::vector<std::string> secrets;
  for (const auto& [begin, end] : SecretSpans(dsn)) {
    const absl::string_view raw = dsn.substr(begin, end - begin);
    secrets.emplace_back(raw);
    if (IsUri(dsn)) {
      std::string decoded = PercentDecode(raw);
      if (decoded != raw) secrets.push_back(std::move(decoded));
    } else {
      // The value as libpq reads it, with its backslash escapes undone.
      std::string unescaped;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
        unescaped += raw[i];
      }
      if (unescaped != raw) secrets.push_back(std::move(unescaped));
    }
  }
  return secrets;
}

std::string RedactProperties(const std::map<std::string, std::string>& props) {
  std::string out;
  for (const auto& [key, value] : props) {
    absl::StrAppend(&out, out.empty() ? "" : ",", key, "=",
                    IsSecretKey(key) ? kRedacted : absl::string_view(value));
  }
  return out;
}

std::string ScrubSecrets(absl::string_view text,
                         const std::vector<std::string>& secrets) {
  std::vector<std::pair<absl::string_view, absl::string_view>> replacements;
  for (const std::string& s : secrets) {
    if (s.size() >= 4) replacements.emplace_back(s, kRedacted);
  }
  // Longest first, so a secret containing another is replaced whole.
  std::sort(replacements.begin(), replacements.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string out(text);
  for (const auto& [secret, with] : replacements) {
    out = absl::StrReplaceAll(out, {{secret, with}});
  }
  return out;
}

}  // namespace coupon
