#include "filter/prefilter.hpp"

#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <nlohmann/json.hpp>

namespace pgs::filter {

uint32_t Prefilter::NeedleId(std::string text, bool at_end) {
  for (uint32_t i = 0; i < needles_.size(); ++i)
    if (needles_[i].text == text && needles_[i].at_end == at_end) return i;
  auto id = static_cast<uint32_t>(needles_.size());
  // Every text has at least one character besides its quote.
  auto key = static_cast<unsigned char>(at_end ? text[text.size() - 2] : text[1]);
  (at_end ? ends_ : starts_)[key].push_back(id);
  needles_.push_back({std::move(text), at_end});
  seen_.push_back(0);
  return id;
}

void Prefilter::AddRule(const Rule& rule) {
  std::vector<std::vector<uint32_t>> fields;
  for (const Field& f : rule.fields) {
    if (f.absent_ok || f.ops.empty()) continue;
    std::vector<uint32_t> ids;
    for (const Operator& op : f.ops) {
      std::string quoted = nlohmann::json(op.str).dump();  // "text" as JSON writes it
      if (op.kind == Operator::kExactString) {
        ids.push_back(NeedleId(quoted, false));
      } else if (op.kind == Operator::kPrefix && !op.str.empty()) {
        ids.push_back(NeedleId(quoted.substr(0, quoted.size() - 1), false));
      } else if (op.kind == Operator::kSuffix && !op.str.empty()) {
        ids.push_back(NeedleId(quoted.substr(1), true));
      } else {
        ids.clear();  // some value of this field is not a text
        break;
      }
    }
    if (!ids.empty()) fields.push_back(std::move(ids));
  }
  if (fields.empty()) useless_ = true;
  rules_.push_back(std::move(fields));
}

bool Prefilter::MayMatch(std::string_view event) {
  if (useless_ || needles_.empty()) return true;
  const char* data = event.data();
  const size_t size = event.size();
  if (++event_ == 0) {  // wrapped: forget what was seen before
    std::fill(seen_.begin(), seen_.end(), 0);
    event_ = 1;
  }
  // One pass over the bytes, 16 at a time: where a quote or a backslash is.
  size_t found = 0;
  auto visit = [&](size_t q) {
    if (q + 1 < size) {
      for (uint32_t id : starts_[static_cast<unsigned char>(data[q + 1])]) {
        const std::string& t = needles_[id].text;
        if (seen_[id] != event_ && size - q >= t.size() && memcmp(data + q, t.data(), t.size()) == 0) {
          seen_[id] = event_;
          ++found;
        }
      }
    }
    if (q >= 1) {
      for (uint32_t id : ends_[static_cast<unsigned char>(data[q - 1])]) {
        const std::string& t = needles_[id].text;
        if (seen_[id] != event_ && q + 1 >= t.size() && memcmp(data + q + 1 - t.size(), t.data(), t.size()) == 0) {
          seen_[id] = event_;
          ++found;
        }
      }
    }
  };
  for (size_t base = 0; base < size && found < needles_.size(); base += 16) {
    uint32_t mask = 0;
#ifdef __SSE2__
    if (base + 16 <= size) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + base));
      mask = static_cast<uint32_t>(_mm_movemask_epi8(
          _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));
    } else
#endif
    {
      for (size_t i = 0; i < 16 && base + i < size; ++i)
        if (data[base + i] == '"' || data[base + i] == '\\') mask |= uint32_t{1} << i;
    }
    for (; mask != 0 && found < needles_.size(); mask &= mask - 1) {
      const size_t q = base + static_cast<size_t>(__builtin_ctz(mask));
      if (data[q] == '\\') return true;  // an escaped string may hold any text
      visit(q);
    }
  }
  // All texts found stops the pass early: then a backslash later on does
  // not matter (the answer is "may match" anyway).
  for (const auto& fields : rules_) {
    bool possible = true;
    for (const auto& ids : fields) {
      bool any = false;
      for (uint32_t id : ids) any = any || seen_[id] == event_;
      if (!any) {
        possible = false;
        break;
      }
    }
    if (possible) return true;
  }
  return false;
}

}  // namespace pgs::filter
