// Identifiers of stream records (no PostgreSQL here).
#pragma once

#include <cstdint>

namespace pgs::mapping {

// "1" + 20-digit commit LSN + 10-digit change index: 31 digits, strictly
// increasing in commit order, then change order; equal on every decoding.
constexpr int kSequenceNumberLength = 31;
void FormatSequenceNumber(uint64_t commit_lsn, uint32_t change_index,
                          char out[kSequenceNumberLength + 1]) noexcept;

// 32 lowercase hex digits derived from the system identifier, the commit LSN
// and the change index: stable across re-decoding, distinct per change.
constexpr int kEventIdLength = 32;
void FormatEventId(uint64_t system_id, uint64_t commit_lsn, uint32_t change_index,
                   char out[kEventIdLength + 1]) noexcept;

// The capture worker stores records without eventID and SequenceNumber
// (both follow from the system identifier and the record's position, and
// eventID's hex digits do not compress); readers splice them back in:
// eventID first, SequenceNumber before the envelope's SizeBytes (the last
// ',"SizeBytes":' of the text: only a string follows it, and an unescaped
// '"' cannot occur inside a JSON string). A record that already has its
// eventID is copied unchanged. `out` needs len + kSpliceExtra bytes; returns
// the length written.
constexpr int kSpliceExtra = 128;
int SpliceRecord(const char* stored, int len, uint64_t system_id, uint64_t commit_lsn, uint32_t change_index,
                 char* out) noexcept;

// Shard of a record: a stable hash of its serialized Keys.
uint32_t ShardOfKeys(const char* keys_json, int len, uint32_t shard_count) noexcept;

}  // namespace pgs::mapping

#include "boundary/cpp_only.hpp"
