#include "targets/error_body.hpp"

#include <algorithm>

namespace pgs::targets {
namespace {

constexpr std::string_view kRedacted = "[redacted]";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;  // no surrogates
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
  }
  return n;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

std::string ErrorBodyExcerpt(std::string_view body, const std::vector<std::string>& secrets, size_t max) {
  // Only the start can be kept; a secret overlapping the cut is still found.
  size_t longest = 0;
  for (const auto& s : secrets) longest = std::max(longest, s.size());
  size_t taken = std::min(body.size(), max + longest);
  std::string text(body.substr(0, taken));
  for (const auto& s : secrets) {
    if (s.size() < 4) continue;
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + kRedacted.size()))
      text.replace(at, s.size(), kRedacted);
  }
  std::string_view in(text);
  while (!in.empty() && IsSpace(in.front())) in.remove_prefix(1);
  std::string out;
  out.reserve(std::min(in.size(), max) + 3);
  bool cut = false;
  for (size_t i = 0; i < in.size();) {
    size_t n = Utf8SequenceLength(in, i);
    std::string_view piece = n == 0 ? kReplacement : in.substr(i, n);
    if (out.size() + piece.size() > max) {
      cut = true;
      break;
    }
    out.append(piece);
    i += n == 0 ? 1 : n;
  }
  // A cut body: what was read beyond max counts as cut too.
  if (!cut && body.size() > taken) cut = true;
  while (!out.empty() && IsSpace(out.back())) out.pop_back();
  if (cut) out.append("...");
  return out;
}

}  // namespace pgs::targets
