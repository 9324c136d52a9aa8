// Runs one event source mapping: per shard, in order, read from the
// checkpoint, batch, invoke, then checkpoint; on errors retry with backoff,
// bisect, honour partial failures and hand failed batches to the OnFailure
// destination (semantics 3.1-3.5).
#pragma once

#include <cstdint>
#include <vector>

#include "dispatch/model.hpp"
#include "dispatch/store.hpp"

namespace pgs::dispatch {

class Dispatcher {
 public:
  explicit Dispatcher(int32_t mapping_id) : mapping_id_(mapping_id) {}

  // Re-reads the configuration (in a transaction of its own). False when the
  // mapping is gone, disabled or the extension was dropped: the worker stops.
  bool Reload();

  // Runs every shard that is due; returns microseconds until one is due again
  // (a large value when all wait for new records).
  int64_t RunDue();

  // New records may have arrived: shards waiting for records are due.
  void Woken();

 private:
  struct Shard {
    ShardState state;
    int64_t due_us = 0;
    int64_t window_start_us = 0;  // the current batching window began
    int unavailable = 0;          // consecutive steps the function did not exist
    std::optional<std::string> last_function_error{"Unhandled"};
  };

  // One transaction's worth of work on one shard.
  void Step(Shard& shard, int64_t now);
  void StepInTransaction(Shard& shard, int64_t now);
  // Hands records [from, to) to the OnFailure destination; false if it failed.
  bool SendToFailureDestination(Shard& shard, const std::vector<Record>& records, size_t from, size_t to,
                                const char* condition, int invoke_count, bool has_response,
                                const std::optional<std::string>& function_error, StepStats& stats);
  void NextBatch(ShardState& s);
  void SetResult(const char* result);

  int32_t mapping_id_;
  MappingConfig cfg_;
  std::vector<Shard> shards_;
};

}  // namespace pgs::dispatch
