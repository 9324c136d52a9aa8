#include "mapping/number.hpp"

#include <cctype>

namespace pgs::mapping {
namespace {

// The decimal digits of a number, with the power of ten of each one.
struct Parsed {
  bool ok = false;
  bool negative = false;
  bool not_finite = false;
  int first_pos = 0;   // power of ten of the first non-zero digit
  int last_pos = 0;    // power of ten of the last non-zero digit
  int significant = 0; // digits from the first to the last non-zero one
  bool zero = true;
  size_t first_at = 0;  // index in the text of the first non-zero digit
};

int FloorDiv2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

Parsed Parse(std::string_view s) {
  Parsed p;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    p.negative = s[i] == '-';
    ++i;
  }
  std::string_view rest = s.substr(i);
  if (rest == "NaN" || rest == "Infinity" || rest == "inf" || rest == "nan") {
    p.ok = true;
    p.not_finite = true;
    return p;
  }
  // Mantissa: digits, optional '.', digits.
  size_t mant_begin = i, int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
  size_t point = i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
  }
  size_t mant_end = i;
  if (int_digits + frac_digits == 0) return p;
  long exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) eneg = s[i++] == '-';
    if (i >= s.size()) return p;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (exponent < 100000) exponent = exponent * 10 + (s[i] - '0');
      ++i;
    }
    if (eneg) exponent = -exponent;
  }
  if (i != s.size()) return p;
  p.ok = true;
  bool seen = false;
  int index = 0;  // position of the digit among the mantissa digits
  for (size_t k = mant_begin; k < mant_end; ++k) {
    if (k == point) continue;
    int pos = static_cast<int>(int_digits) - 1 - index + static_cast<int>(exponent);
    ++index;
    if (s[k] == '0') continue;
    if (!seen) {
      p.first_pos = pos;
      p.first_at = k;
      seen = true;
    }
    p.last_pos = pos;
  }
  p.zero = !seen;
  if (seen) p.significant = p.first_pos - p.last_pos + 1;
  return p;
}

}  // namespace

NumberKind ClassifyNumber(std::string_view text) noexcept {
  Parsed p = Parse(text);
  if (!p.ok) return NumberKind::kMalformed;
  if (p.not_finite) return NumberKind::kNotFinite;
  if (p.zero) return NumberKind::kValid;
  if (p.significant > 38) return NumberKind::kOutOfRange;
  // DynamoDB: magnitudes from 1E-130 up to 9.99...E+125.
  if (p.first_pos > 125 || p.first_pos < -130) return NumberKind::kOutOfRange;
  return NumberKind::kValid;
}

int SizeOf(const Parsed& p) noexcept {
  if (!p.ok || p.not_finite || p.zero) return 1;
  int pairs = FloorDiv2(p.first_pos) - FloorDiv2(p.last_pos) + 1;
  int size = pairs + 1 + (p.negative ? 1 : 0);
  return size > 21 ? 21 : size;
}

int NumberSizeBytes(std::string_view text) noexcept { return SizeOf(Parse(text)); }

int CanonicalNumber(std::string_view text, char* out, int* size_bytes) noexcept {
  Parsed p = Parse(text);
  if (!p.ok || p.not_finite) return -1;
  if (p.zero) {
    out[0] = '0';
    *size_bytes = 1;
    return 1;
  }
  if (p.significant > 38 || p.first_pos > 125 || p.first_pos < -130) return -1;
  // The significant digits, without the point (at most 38 of them).
  char digits[38];
  int n = 0;
  for (size_t k = p.first_at; n < p.significant; ++k)
    if (text[k] != '.') digits[n++] = text[k];
  char* o = out;
  if (p.negative) *o++ = '-';
  int i = 0;
  if (p.first_pos >= 0) {
    for (int pos = p.first_pos; pos >= 0; --pos) *o++ = i < n ? digits[i++] : '0';
    if (i < n) {
      *o++ = '.';
      while (i < n) *o++ = digits[i++];
    }
  } else {
    *o++ = '0';
    *o++ = '.';
    for (int pos = -1; pos > p.first_pos; --pos) *o++ = '0';
    while (i < n) *o++ = digits[i++];
  }
  *size_bytes = SizeOf(p);
  return static_cast<int>(o - out);
}

int IntegerSizeBytes(long long value) noexcept {
  if (value == 0) return 1;
  // Magnitude as unsigned: -2^63 has no positive int64.
  unsigned long long m = value < 0 ? 0ULL - static_cast<unsigned long long>(value) : static_cast<unsigned long long>(value);
  int last_pos = 0;  // trailing zeros: power of ten of the last non-zero digit
  while (m % 10 == 0) m /= 10, ++last_pos;
  int first_pos = last_pos;
  while (m >= 10) m /= 10, ++first_pos;
  int size = first_pos / 2 - last_pos / 2 + 1 + 1 + (value < 0 ? 1 : 0);
  return size > 21 ? 21 : size;
}

}  // namespace pgs::mapping
