// Tumbling windows (TumblingWindowInSeconds, semantics 1.3): which window a
// record belongs to, the windowed event, the function's state reply, and the
// window state each shard keeps next to its checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dispatch/model.hpp"

namespace pgs::dispatch::window {

// The most state a window carries from one invocation to the next (AWS: 1 MB
// per shard); a bigger state terminates the window early.
constexpr size_t kMaxState = 1024 * 1024;

// How long after its end a window with no record of a later window in sight
// waits for records committed before its end that are still being captured.
constexpr int64_t kCloseGraceUs = 1000000;

// One shard's window (streams.mapping_shard.window_*).
struct ShardWindow {
  int64_t start_us = 0;      // the open window's start (0: none is open)
  std::string state = "{}";  // the state the next invocation of it gets
  bool early = false;        // it was terminated early (its state started again from {})
  int64_t floor_us = 0;      // where the next window may start: the end of the last closed one
  bool operator==(const ShardWindow& o) const {
    return start_us == o.start_us && state == o.state && early == o.early && floor_us == o.floor_us;
  }
};

// The start of the window a record committed at `arrival_us` belongs to:
// aligned to the epoch, but never before `base_us` (the open window, or the
// end of the last closed one: a record captured after its window closed
// counts in the next one).
int64_t WindowOf(int64_t arrival_us, int64_t size_us, int64_t base_us);
inline int64_t Base(const ShardWindow& w) { return w.start_us != 0 ? w.start_us : w.floor_us; }

// What an invocation of a windowed mapping is.
struct Invoke {
  bool on = false;
  int64_t start_us = 0;
  int64_t end_us = 0;
  bool final = false;
  bool early = false;
};

// The windowed event of records [from, to): the batch envelope plus window,
// state, shardId, eventSourceARN, isFinalInvokeForWindow, isWindowTerminatedEarly.
std::string BuildEvent(const std::vector<Record>& records, size_t from, size_t to, const Invoke& inv,
                       const std::string& state, const std::string& shard_id, const std::string& stream_arn);
// Bytes the windowed event adds to the batch envelope (for the 6 MB cut).
size_t EnvelopeExtra(const std::string& state, const std::string& shard_id, const std::string& stream_arn);

// The function's reply: a top-level "state" object is required.
struct Reply {
  bool ok = false;
  std::string state;     // as JSON text (compact)
  bool too_big = false;  // over kMaxState: the window is terminated early
  std::string error;     // !ok: why
};
Reply ReadReply(const std::optional<std::string>& body);

// What a successful invocation (or the part of it before a reported
// failure) does to the window.
void AfterSuccess(ShardWindow& w, const Invoke& inv, const Reply& reply, bool whole_batch);

// The Idempotency-Key of a windowed HTTP invocation: the same window, batch
// and flags give the same key, whichever attempt it is.
std::string KeyMaterial(const std::string& mapping_uuid, const Invoke& inv, const std::string& first,
                        const std::string& last);

// Durable state (SPI, caller's transaction).
std::map<int32_t, ShardWindow> Load(int32_t mapping_id);
void Save(int32_t mapping_id, int32_t shard, const ShardWindow& w);

}  // namespace pgs::dispatch::window
