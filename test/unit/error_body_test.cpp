// Unit test of the HTTP error body kept in last_error (src/targets/error_body.cpp).
// sources: src/targets/error_body.cpp
#include "targets/error_body.hpp"

#include <cstdio>
#include <string>

namespace {

int failures = 0;
int count = 0;

void Check(bool ok, const char* what, const std::string& got) {
  ++count;
  if (!ok) ++failures;
  std::printf("%s %d - %s", ok ? "ok" : "not ok", count, what);
  if (!ok) std::printf(": got [%s]", got.c_str());
  std::printf("\n");
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

}  // namespace

int main() {
  using pgs::targets::ErrorBodyExcerpt;
  std::string got = ErrorBodyExcerpt("  {\"errorMessage\":\"boom\"}\n", {});
  Check(got == "{\"errorMessage\":\"boom\"}", "a short body is kept whole, trimmed", got);

  got = ErrorBodyExcerpt(std::string(5000, 'x'), {});
  Check(got == std::string(1024, 'x') + "...", "a long body keeps its first 1024 bytes and says it was cut", got);

  // 1023 ASCII bytes then a 3-byte character: the character does not fit.
  got = ErrorBodyExcerpt(std::string(1023, 'a') + "\xE2\x82\xAC" + "tail", {});
  Check(got == std::string(1023, 'a') + "...", "the cut falls between characters", got);

  got = ErrorBodyExcerpt(std::string("bad \xFF\xFE bytes \xC3 and a NUL \0 here", 31), {});
  Check(got == "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes \xEF\xBF\xBD and a NUL \xEF\xBF\xBD here" && ValidUtf8(got),
        "invalid UTF-8 and NUL become U+FFFD", got);

  got = ErrorBodyExcerpt("echo: Authorization: Bearer s3cr3t-token, again s3cr3t-token",
                         {"Bearer s3cr3t-token", "s3cr3t-token", "ab"});
  Check(got.find("s3cr3t") == std::string::npos && got.find("[redacted]") != std::string::npos,
        "secrets are redacted", got);

  // A secret that straddles the cut is redacted before cutting.
  std::string secret = "top-secret-value-0123456789";
  got = ErrorBodyExcerpt(std::string(1015, 'b') + secret + std::string(100, 'c'), {secret});
  Check(got.find("top-") == std::string::npos && got.size() <= 1024 + 3, "a secret across the cut leaves no part", got);

  got = ErrorBodyExcerpt("caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC", {});
  Check(got == "caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC", "valid multibyte text is kept", got);

  got = ErrorBodyExcerpt("\xED\xA0\x80 \xF4\x90\x80\x80 \xC0\xAF", {});
  Check(ValidUtf8(got) && got.find("\xED\xA0") == std::string::npos, "surrogates, beyond U+10FFFF and overlongs are replaced", got);

  Check(ErrorBodyExcerpt("", {}).empty(), "an empty body gives nothing", "");
  std::printf("1..%d\n", count);
  return failures == 0 ? 0 : 1;
}
