// Pure rules of a mapping's error handling (semantics 3.2-3.5): how a
// function's response is read and how long to wait before a retry.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pgs::dispatch {

struct ResponseVerdict {
  enum Kind { kSuccess, kPartial, kFailure } kind = kSuccess;
  size_t first_failed = 0;  // kPartial: index of the lowest reported record
};

// Reads a ReportBatchItemFailures response. `body` is the function's return
// value as JSON text (nullopt: it returned nothing/NULL); `seqs` are the
// batch's sequence numbers in order. Unparseable JSON is a failure.
ResponseVerdict ReadBatchItemFailures(const std::optional<std::string>& body, const std::vector<std::string>& seqs);

// Milliseconds to wait after the n-th consecutive failed invocation (n >= 1)
// of one batch: 500 ms doubling up to 60 s.
int64_t BackoffMs(int n);

}  // namespace pgs::dispatch
