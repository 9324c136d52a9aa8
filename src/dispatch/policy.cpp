#include "dispatch/policy.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pgs::dispatch {

ResponseVerdict ReadBatchItemFailures(const std::optional<std::string>& body, const std::vector<std::string>& seqs) {
  using nlohmann::json;
  if (!body) return {};  // null response: complete success
  json doc = json::parse(*body, nullptr, false);
  if (doc.is_discarded()) return {ResponseVerdict::kFailure, 0};
  // [], {}, null and an object without batchItemFailures are complete successes.
  if (!doc.is_object()) return {};
  auto it = doc.find("batchItemFailures");
  if (it == doc.end() || it->is_null()) return {};
  if (!it->is_array()) return {ResponseVerdict::kFailure, 0};
  if (it->empty()) return {};
  size_t lowest = seqs.size();
  for (const json& failure : *it) {
    if (!failure.is_object()) return {ResponseVerdict::kFailure, 0};
    auto id = failure.find("itemIdentifier");
    // A missing, null, empty or non-string identifier, or one that is not in
    // the batch, fails the whole batch.
    if (id == failure.end() || !id->is_string()) return {ResponseVerdict::kFailure, 0};
    const auto& s = id->get_ref<const std::string&>();
    auto pos = std::find(seqs.begin(), seqs.end(), s);
    if (s.empty() || pos == seqs.end()) return {ResponseVerdict::kFailure, 0};
    lowest = std::min(lowest, static_cast<size_t>(pos - seqs.begin()));
  }
  return {ResponseVerdict::kPartial, lowest};
}

int64_t BackoffMs(int n) {
  int64_t ms = 500;
  for (int i = 1; i < n && ms < 60000; ++i) ms *= 2;
  return std::min<int64_t>(ms, 60000);
}

}  // namespace pgs::dispatch
