// The documents a mapping sends: the batch event (semantics 1.2) and the
// OnFailure invocation record (semantics 2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/model.hpp"

namespace pgs::dispatch {

// {"Records":[...]} of records [from, to).
std::string BuildEvent(const std::vector<Record>& records, size_t from, size_t to);
// Bytes BuildEvent would produce.
size_t EventSize(size_t records_bytes, size_t count);

struct FailureInfo {
  std::string request_id;
  std::string function_arn;
  std::string condition;                      // RetryAttemptsExhausted | RecordAgeExceeded
  int invoke_count = 1;
  bool has_response = true;                   // RecordAgeExceeded records have no responseContext
  long status_code = 200;                     // HTTP targets: the answer's status, 0 for none
  std::optional<std::string> function_error;  // "Unhandled", or null
  int64_t now_us = 0;
  std::string shard_id;
  std::string stream_arn;
};

// The invocation record of a failed batch [from, to), with the batch itself
// as "payload".
std::string BuildFailureRecord(const FailureInfo& info, const std::vector<Record>& records, size_t from, size_t to);

// 2022-07-13T13:48:01.000Z (millis) or 2022-07-13T13:48:01Z.
std::string IsoUtc(int64_t unix_us, bool millis);

// A random (version 4) UUID.
std::string RandomUuid();

}  // namespace pgs::dispatch
