// A cheap test run before an event is parsed: a field that must equal one of
// some strings (or start or end with one) can only match an event whose text
// holds one of them, quoted as JSON writes it. Without a backslash in the
// event every string in it is written so, and an event that lacks such a
// text for some field of every rule is decided without being parsed. Most
// records a selective filter drops end here. No PostgreSQL here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filter/compiled.hpp"

namespace pgs::filter {

class Prefilter {
 public:
  // Adds the texts a rule needs; a rule without any makes the prefilter
  // answer "may match" for every event.
  void AddRule(const Rule& rule);
  // False when no rule can match the event. Reads the event once, stopping
  // at a quote (every text starts or ends with one); allocates nothing.
  bool MayMatch(std::string_view event);

 private:
  struct Needle {
    std::string text;  // "abc" (exact), "abc (prefix) or abc" (suffix)
    bool at_end;       // anchored at its closing quote (a suffix)
  };
  uint32_t NeedleId(std::string text, bool at_end);

  bool useless_ = false;                           // a rule needs no text
  std::vector<Needle> needles_;                    // distinct texts
  std::vector<std::vector<std::vector<uint32_t>>> rules_;  // rule -> field -> needles (one of them)
  std::vector<uint32_t> starts_[256];              // by the character after the opening quote
  std::vector<uint32_t> ends_[256];                // by the character before the closing quote
  std::vector<uint32_t> seen_;                     // needle -> event number it was last seen in
  uint32_t event_ = 0;
};

}  // namespace pgs::filter

#include "boundary/cpp_only.hpp"
