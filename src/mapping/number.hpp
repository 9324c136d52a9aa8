// DynamoDB number rules (no PostgreSQL here).
#pragma once

#include <string_view>

namespace pgs::mapping {

enum class NumberKind {
  kValid,        // a DynamoDB N value
  kNotFinite,    // NaN, Infinity, -Infinity: kept as an S value
  kOutOfRange,   // more than 38 significant digits or beyond 1E-130..1E+126
  kMalformed,    // not a decimal number at all
};

// Classifies the text of a number (as PostgreSQL prints it: optional sign,
// digits, optional fraction, optional exponent).
NumberKind ClassifyNumber(std::string_view text) noexcept;

// DynamoDB's item-size contribution of a valid N value: one byte per pair of
// significant digits (pairs aligned on the decimal point) plus one, plus one
// more when negative, at most 21. Zero is 1.
int NumberSizeBytes(std::string_view text) noexcept;

// The longest canonical text: "-0." then 129 zeros and 38 digits.
constexpr int kMaxCanonicalNumberLen = 170;

// Writes DynamoDB's canonical text of the number `text` to out (room for
// kMaxCanonicalNumberLen bytes, not terminated) and its size in bytes to
// *size_bytes; returns the text's length, or -1 when DynamoDB cannot hold
// the number (NaN, Infinity, more than 38 significant digits, magnitude
// outside 1E-130 .. 9.99...E+125, malformed). The canonical text is what
// DynamoDB returns: plain digits (no exponent), no leading zeros, no
// trailing zeros after the point, no point without a fraction, "0" for any
// zero (no "-0").
int CanonicalNumber(std::string_view text, char* out, int* size_bytes) noexcept;

// The same for an integer, without going through its text.
int IntegerSizeBytes(long long value) noexcept;

}  // namespace pgs::mapping

#include "boundary/cpp_only.hpp"
