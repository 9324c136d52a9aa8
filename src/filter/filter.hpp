// FilterCriteria and TestEventPattern: AWS's event-pattern language
// (docs/event-patterns rules, semantics 3.6), compiled once, then matched
// against event JSON in one streaming pass (no PostgreSQL here).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::filter {

// A pattern that is not valid; what() says what is wrong and where, e.g.
// `leaf value of "eventName" must be an array`.
class PatternError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bounds that keep compiling and matching small whatever the input.
constexpr size_t kMaxPatternBytes = 65536;  // FilterCriteria allows 4096 characters
constexpr int kMaxPatternDepth = 64;        // nested objects and arrays in a pattern
constexpr int kMaxEventDepth = 256;         // nested objects and arrays in an event
constexpr int kMaxCombinations = 1000;      // $or branches multiplied out, per pattern
constexpr int kMaxFieldsPerRule = 64;       // conditions ANDed in one combination
constexpr int kMaxConditions = 20000;       // conditions of all combinations of all patterns

class Filter {
 public:
  // Compiles patterns that are ORed (a record matches when one matches).
  // Throws PatternError.
  explicit Filter(const std::vector<std::string>& patterns);
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  enum class Result { kNoMatch, kMatch, kBadEvent };
  // Matches an event (JSON text). kBadEvent: not JSON, or nested deeper than
  // kMaxEventDepth (event_error() says which). Not thread-safe: the filter
  // keeps its scratch state between calls so that matching allocates nothing
  // in the common case.
  Result Match(std::string_view event);
  // "" when the event is a JSON object within kMaxEventDepth (TestEventPattern
  // requires one), else what is wrong with it.
  static std::string CheckEvent(std::string_view event);
  // Whether a pattern names the dotted path or a path below it ("eventID",
  // "dynamodb.SequenceNumber"): an event that differs from another only in
  // fields no pattern names matches exactly when the other does.
  bool Reads(std::string_view path) const;
  const std::string& event_error() const;

  struct Impl;  // compiled patterns and scratch state (filter/match.cpp)

 private:
  std::unique_ptr<Impl> impl_;
};

// "" when the pattern is valid, else what is wrong (PatternError's text).
std::string CheckPattern(std::string_view pattern);

// The patterns of a FilterCriteria document ({"Filters":[{"Pattern":"..."}]}).
// Throws PatternError when it is not so shaped.
std::vector<std::string> PatternsOf(std::string_view filter_criteria);

}  // namespace pgs::filter

#include "boundary/cpp_only.hpp"
