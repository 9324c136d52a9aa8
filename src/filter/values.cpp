#include "filter/values.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "filter/filter.hpp"

namespace pgs::filter {
namespace {

uint32_t Lower(uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c >= 0x100 && c <= 0x17F) {
    bool even_upper = (c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177);
    bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if ((even_upper && c % 2 == 0) || (odd_upper && c % 2 == 1)) return c + 1;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

void PutUtf8(uint32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool StartsWith(std::string_view s, std::string_view p) { return s.size() >= p.size() && s.compare(0, p.size(), p) == 0; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// Parses an IPv4 or IPv6 address into 16 bytes (IPv4 in the first 4).
bool ParseIp(std::string_view text, bool* v6, unsigned char out[16]) {
  char buf[64];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  memset(out, 0, 16);
  if (inet_pton(AF_INET, buf, out) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, buf, out) == 1) {
    *v6 = true;
    return true;
  }
  return false;
}

}  // namespace

void FoldCase(std::string_view in, std::string* out) {
  out->clear();
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      out->push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      ++i;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
      PutUtf8(Lower((uint32_t{c & 0x1Fu} << 6) | (p[i + 1] & 0x3Fu)), out);
      i += 2;
    } else {
      out->push_back(static_cast<char>(c));  // 3- and 4-byte characters have no mapping here
      ++i;
    }
  }
}

Wildcard Wildcard::Parse(std::string_view text) {
  Wildcard w;
  w.pieces.emplace_back();
  bool last_star = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 1 >= text.size() || (text[i + 1] != '*' && text[i + 1] != '\\'))
        throw PatternError("Invalid escape character at pos " + std::to_string(i) + " of wildcard \"" +
                           std::string(text) + "\" (only \\* and \\\\ are escapes)");
      w.pieces.back().push_back(text[++i]);
      last_star = false;
    } else if (c == '*') {
      if (last_star)
        throw PatternError("Consecutive wildcard characters at pos " + std::to_string(i) + " of wildcard \"" +
                           std::string(text) + "\"");
      w.pieces.emplace_back();
      last_star = true;
    } else {
      w.pieces.back().push_back(c);
      last_star = false;
    }
  }
  return w;
}

bool Wildcard::Matches(std::string_view s) const {
  if (pieces.size() == 1) return s == pieces[0];
  const std::string& first = pieces.front();
  const std::string& last = pieces.back();
  if (s.size() < first.size() + last.size() || !StartsWith(s, first) || !EndsWith(s, last)) return false;
  // Middle pieces, leftmost first, between the prefix and the suffix.
  size_t pos = first.size();
  size_t end = s.size() - last.size();
  for (size_t k = 1; k + 1 < pieces.size(); ++k) {
    const std::string& piece = pieces[k];
    if (piece.empty()) continue;
    size_t at = s.substr(0, end).find(piece, pos);
    if (at == std::string_view::npos) return false;
    pos = at + piece.size();
  }
  return true;
}

Cidr Cidr::Parse(std::string_view text) {
  Cidr c;
  size_t slash = text.find('/');
  if (slash == std::string_view::npos || text.find('/', slash + 1) != std::string_view::npos)
    throw PatternError("Malformed CIDR \"" + std::string(text) + "\": one \"/\" is required");
  std::string_view ip = text.substr(0, slash), mask = text.substr(slash + 1);
  if (!ParseIp(ip, &c.v6, c.lo))
    throw PatternError("Nonstandard IP address \"" + std::string(ip) + "\" in CIDR \"" + std::string(text) + "\"");
  int bits = 0;
  if (mask.empty() || mask.size() > 3 || mask.find_first_not_of("0123456789") != std::string_view::npos)
    throw PatternError("Malformed CIDR \"" + std::string(text) + "\": the mask must be an integer");
  for (char ch : mask) bits = bits * 10 + (ch - '0');
  int width = c.v6 ? 128 : 32;
  if (bits > width)
    throw PatternError("Malformed CIDR \"" + std::string(text) + "\": the mask is over " + std::to_string(width));
  int bytes = width / 8;
  for (int i = 0; i < bytes; ++i) {
    int keep = std::clamp(bits - i * 8, 0, 8);
    auto m = static_cast<unsigned char>(keep == 0 ? 0 : (0xFF << (8 - keep)) & 0xFF);
    c.hi[i] = static_cast<unsigned char>(c.lo[i] | ~m);
    c.lo[i] = static_cast<unsigned char>(c.lo[i] & m);
  }
  return c;
}

bool Cidr::Contains(std::string_view ip) const {
  bool is_v6;
  unsigned char a[16];
  if (!ParseIp(ip, &is_v6, a) || is_v6 != v6) return false;
  size_t bytes = v6 ? 16 : 4;
  return memcmp(a, lo, bytes) >= 0 && memcmp(a, hi, bytes) <= 0;
}

bool Operator::Matches(const Leaf& v, const std::string& folded) const {
  switch (kind) {
    case kExactString:
      return v.type == Leaf::kString && v.s == str;
    case kExactNumber:
      return v.type == Leaf::kNumber && v.d == lo;
    case kExactBool:
      return v.type == Leaf::kBool && v.b == b;
    case kExactNull:
      return v.type == Leaf::kNull;
    case kExists:
      return true;
    case kPrefix:
      return v.type == Leaf::kString && StartsWith(v.s, str);
    case kSuffix:
      return v.type == Leaf::kString && EndsWith(v.s, str);
    case kPrefixIc:
      return v.type == Leaf::kString && StartsWith(folded, str);
    case kSuffixIc:
      return v.type == Leaf::kString && EndsWith(folded, str);
    case kEqualsIc:
      return v.type == Leaf::kString && folded == str;
    case kNumeric:
      if (v.type != Leaf::kNumber) return false;
      if (has_lo && (lo_incl ? v.d < lo : v.d <= lo)) return false;
      if (has_hi && (hi_incl ? v.d > hi : v.d >= hi)) return false;
      return true;
    case kCidr:
      return v.type == Leaf::kString && cidr.Contains(v.s);
    case kWildcard:
      return v.type == Leaf::kString && wildcards[0].Matches(v.s);
    // anything-but matches values of another type, JSON null included.
    case kNotStrings:
      return v.type != Leaf::kString || std::find(strs.begin(), strs.end(), v.s) == strs.end();
    case kNotNumbers:
      return v.type != Leaf::kNumber || std::find(nums.begin(), nums.end(), v.d) == nums.end();
    case kNotPrefix:
      return v.type != Leaf::kString ||
             std::none_of(strs.begin(), strs.end(), [&](const std::string& p) { return StartsWith(v.s, p); });
    case kNotSuffix:
      return v.type != Leaf::kString ||
             std::none_of(strs.begin(), strs.end(), [&](const std::string& p) { return EndsWith(v.s, p); });
    case kNotEqualsIc:
      return v.type != Leaf::kString || std::find(strs.begin(), strs.end(), folded) == strs.end();
    case kNotWildcard:
      return v.type != Leaf::kString ||
             std::none_of(wildcards.begin(), wildcards.end(), [&](const Wildcard& w) { return w.Matches(v.s); });
  }
  return false;
}

}  // namespace pgs::filter
