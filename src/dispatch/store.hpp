// The dispatcher's reads and writes of pg_streams' own tables (run as the
// worker's user, inside the caller's transaction, SPI connected).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dispatch/model.hpp"

namespace pgs::dispatch {

// Counter increments and notes of one step of one shard.
struct StepStats {
  int64_t read = 0, filtered = 0, delivered = 0, failed_records = 0;
  int64_t invocations = 0, function_errors = 0, retries = 0, bisects = 0;
  int64_t failed_batches = 0, discarded_batches = 0, throttles = 0;
  std::optional<int64_t> iterator_age_ms;
  std::optional<std::string> error;
};

// False when the mapping no longer exists.
bool LoadMapping(int32_t mapping_id, MappingConfig* out);
std::vector<ShardState> LoadShards(int32_t mapping_id);
// The function of that name registered by `owner` (absent: exists is false).
TargetConfig LoadTarget(const std::string& function_name, uint32_t owner);

// Why the mapping may not deliver a batch now (streams._mapping_problem): its
// owner lost the right to read the stream or to use the function it was
// bound to, or that function is gone. nullopt: it may deliver.
struct AccessProblem {
  std::string result;  // LastProcessingResult
  std::string error;   // last_error
};
std::optional<AccessProblem> CheckAccess(int32_t mapping_id);

// A record as stored: its text lacks eventID and dynamodb.SequenceNumber
// (Splice puts them in). `text` lives until the next read of the shard.
struct StoredRecord {
  Position pos;
  int64_t arrival_us;
  std::string_view text;
};
// Calls `visit` for the records after `after` (and at or before `upto`),
// oldest first, until it returns false or there are no more.
void ForEachStored(const MappingConfig& cfg, int32_t shard, Position after, std::optional<Position> upto,
                   const std::function<bool(const StoredRecord&)>& visit);
// The record as a target receives it.
void Splice(const StoredRecord& stored, Record* out);

// Records after `after` (and at or before `upto`), oldest first, at most `limit`.
std::vector<Record> ReadRecords(const MappingConfig& cfg, int32_t shard, Position after,
                                std::optional<Position> upto, int limit);

// Writes the shard's state and adds the counters; false when the row is gone.
bool SaveShard(int32_t mapping_id, const ShardState& s, const StepStats& stats, bool invoked);

void SetMappingState(int32_t mapping_id, const char* state);
void SetLastResult(int32_t mapping_id, const std::string& result);

// Microseconds since the Unix epoch.
int64_t NowUs();

}  // namespace pgs::dispatch
