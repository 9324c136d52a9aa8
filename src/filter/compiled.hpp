// The compiled form of a set of ORed patterns: every pattern multiplied out
// over its $or branches into rules (ANDs of fields), and a trie of the
// fields' key paths that the matcher walks while it reads an event.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filter/values.hpp"

namespace pgs::filter {

// One field of a rule: the leaf at its path must match one of `ops`, or, when
// `absent_ok` (exists:false), no leaf may be at its path.
struct Field {
  std::vector<Operator> ops;
  bool absent_ok = false;
  bool fold = false;  // some op needs the folded value
};

struct Rule {
  std::vector<Field> fields;
  uint64_t positive = 0;  // fields with ops
  uint64_t negative = 0;  // fields with absent_ok
  uint64_t all = 0;
};

// A node of the key-path trie ("a.b" and {"a":{"b"}} are the same path).
struct PathNode {
  std::vector<std::pair<std::string, uint32_t>> children;  // key segment -> node
  struct Ref {
    uint32_t rule;
    uint32_t field;
  };
  std::vector<Ref> refs;  // fields whose path ends here
  bool fold = false;      // one of them needs the folded value

  int Child(std::string_view segment) const {
    for (const auto& c : children)
      if (c.first == segment) return static_cast<int>(c.second);
    return -1;
  }
};

struct Compiled {
  std::vector<Rule> rules;
  std::vector<PathNode> nodes;  // nodes[0] is the root
};

// Compiles the ORed patterns (throws PatternError).
Compiled Compile(const std::vector<std::string>& patterns);

}  // namespace pgs::filter

#include "boundary/cpp_only.hpp"
