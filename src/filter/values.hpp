// Tests of one leaf value of an event against one operator of a pattern
// (exact, prefix, suffix, equals-ignore-case, anything-but, numeric, exists,
// cidr, wildcard), and the parsing those operators need (no PostgreSQL here).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::filter {

// A leaf of the event: JSON null, boolean, number or string.
struct Leaf {
  enum Type : uint8_t { kNull, kBool, kNumber, kString } type = kNull;
  bool b = false;
  double d = 0;
  std::string_view s;
};

// Lower-cases UTF-8 text for equals-ignore-case: ASCII, Latin-1, Latin
// Extended-A, Greek and Cyrillic letters; other characters are kept.
void FoldCase(std::string_view in, std::string* out);

// A wildcard value: literal pieces separated by `*`. Throws PatternError on
// `**` or an escape other than `\*` and `\\`.
struct Wildcard {
  std::vector<std::string> pieces;  // pieces.size() - 1 stars between them
  static Wildcard Parse(std::string_view text);
  bool Matches(std::string_view s) const;
};

// A CIDR block (IPv4 or IPv6), host bits cleared. Throws PatternError.
struct Cidr {
  bool v6 = false;
  unsigned char lo[16] = {}, hi[16] = {};
  static Cidr Parse(std::string_view text);
  bool Contains(std::string_view ip) const;
};

struct Operator {
  enum Kind : uint8_t {
    kExactString, kExactNumber, kExactBool, kExactNull, kExists,
    kPrefix, kSuffix, kPrefixIc, kSuffixIc, kEqualsIc,
    kNumeric, kCidr, kWildcard,
    kNotStrings, kNotNumbers, kNotPrefix, kNotSuffix, kNotEqualsIc, kNotWildcard,
  } kind = kExactNull;
  bool b = false;
  std::string str;                 // exact, prefix, suffix (folded for *Ic)
  std::vector<std::string> strs;   // anything-but lists (folded for kNotEqualsIc)
  std::vector<double> nums;        // kNotNumbers
  double lo = 0, hi = 0;           // kNumeric (kExactNumber: lo)
  bool has_lo = false, has_hi = false, lo_incl = false, hi_incl = false;
  std::vector<Wildcard> wildcards; // kWildcard (one), kNotWildcard
  Cidr cidr;

  // `folded` is FoldCase(leaf.s) when needs_fold() and the leaf is a string.
  bool Matches(const Leaf& leaf, const std::string& folded) const;
  bool needs_fold() const { return kind == kPrefixIc || kind == kSuffixIc || kind == kEqualsIc || kind == kNotEqualsIc; }
};

}  // namespace pgs::filter

#include "boundary/cpp_only.hpp"
